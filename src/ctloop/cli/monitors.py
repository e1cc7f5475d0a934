"""``ctloop monitors``: the monitor of each deployment — its frozen reference, rules, sinks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from ctloop._internal.text import format_duration
from ctloop.cli._output import client_from, console, console_err, fmt_time, print_json
from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.monitoring.entities import Monitor

app = typer.Typer(
    help="Monitors: what each deployment's traffic is compared with, and who hears of drift.",
    no_args_is_help=True,
)

DEPLOYMENT_HELP = "Deployment name."
JSON_HELP = "Print JSON."


def parse_sink(text: str) -> dict[str, Any]:
    """``log``, ``webhook=URL`` or ``slack=URL`` as a sink config, checked."""
    from ctloop.monitoring.sinks import sinks_from_config

    kind, _, url = text.partition("=")
    kind = kind.strip().lower()
    if kind == "log" and not url:
        spec: dict[str, Any] = {"kind": "log"}
    elif kind in ("webhook", "slack") and url.strip():
        spec = {"kind": kind, "url": url.strip()}
    else:
        raise InvalidInput(f"--sink {text!r}: use log, webhook=URL or slack=URL")
    try:
        sinks_from_config([spec])
    except InvalidInput as exc:
        raise InvalidInput(f"--sink {text!r}: {str(exc).removeprefix('sinks[0]: ')}") from None
    return spec


def read_rules(path: Path) -> list[dict[str, Any]]:
    """Alert rules from a YAML or JSON file: a list of rules, or a mapping with ``rules``."""
    import yaml

    from ctloop.monitoring.rules import rules_from_config

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInput(f"cannot read rules file {str(path)!r}: {why}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise InvalidInput(f"rules file {str(path)!r} is not valid {kind}: {first}") from None
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    rules_from_config(data, where=f"rules file {str(path)!r}: rules")
    return [dict(r) for r in data]


def sink_text(spec: dict[str, Any]) -> str:
    """A sink for people: a webhook by scheme and host only (a Slack URL's path is secret)."""
    url = spec.get("url")
    if not url:
        return str(spec.get("kind"))
    parts = urlsplit(str(url))
    return f"{spec.get('kind')}({parts.scheme}://{parts.netloc})"


def rule_text(spec: dict[str, Any]) -> str:
    """A rule on one line: kind, threshold, what else it watches, severity."""
    params = {k: v for k, v in spec.items() if k not in ("kind", "severity", "threshold")}
    threshold = spec.get("threshold")
    out = [str(spec["kind"])]
    if threshold is not None:
        out.append(f"{threshold:.4g}" if isinstance(threshold, float) else str(threshold))
    if params:
        out.append(f"({', '.join(f'{k}={v}' for k, v in params.items())})")
    out.append(str(spec.get("severity", "warning")))
    return " ".join(out)


def _columns(monitor: Monitor) -> list[dict[str, Any]]:
    """The profiled columns — name, kind, rows, missing — without bins or samples."""
    out = []
    for c in monitor.profile.get("columns", []):
        out.append({k: c.get(k) for k in ("name", "kind", "rows", "missing")})
    return out


def _estimation(monitor: Monitor) -> dict[str, Any] | None:
    """What label-free estimation was fitted on, without the held-out sample itself."""
    est = (monitor.estimation or {}).get("estimation")
    if not est:
        return None
    keep = ("source", "context", "rows", "label_column", "label_rule", "in_sample", "note")
    return {k: est.get(k) for k in keep}


def monitor_view(monitor: Monitor) -> dict[str, Any]:
    """A monitor as ``show --json`` prints it: the profile as its columns and kinds."""
    details = dict(monitor.estimation or {})
    return {
        **{k: v for k, v in vars(monitor).items() if k not in ("profile", "estimation")},
        "source": details.get("source"),
        "task": details.get("task"),
        "classes": details.get("classes"),
        "notes": details.get("notes") or [],
        "columns": _columns(monitor),
        "estimation": _estimation(monitor),
    }


def _tell_frozen(monitor: Monitor, lead: str) -> None:
    """What the monitor froze: reference, dataset profiled, features, rules, estimation."""
    view = monitor_view(monitor)
    columns = view["columns"]
    rows = max((c["rows"] or 0 for c in columns), default=0)
    features = [c["name"] for c in columns if c["name"] != "prediction"]
    tested = len(monitor.features) if monitor.features is not None else len(features)
    and_prediction = " and the prediction" if len(features) < len(columns) else ""
    console.print(
        f"{lead}the monitor of {escape(monitor.deployment)}: reference "
        f"{escape(monitor.reference)} (given as {escape(monitor.reference_given)}), "
        f"{escape(str(view['source'] or 'a profile given by hand'))} profiled ({rows} rows, "
        f"{len(columns)} columns)"
    )
    console.print(
        f"  {tested} feature(s) tested{and_prediction}; "
        f"window {escape(monitor.window)}, drift share {monitor.drift_share:g}, "
        f"cooldown {format_duration(timedelta(seconds=monitor.cooldown_seconds))}"
    )
    console.print(f"  rules: {escape('; '.join(rule_text(r) for r in monitor.rules) or 'none')}")
    console.print(f"  sinks: {escape(', '.join(sink_text(s) for s in monitor.sinks) or 'none')}")
    est = view["estimation"]
    if est:
        console.print(
            f"  label-free estimation: on (fitted on {est['rows']} rows of "
            f"{escape(str(est['source']))}, label {escape(str(est['label_column']))})"
        )
    else:
        console.print("  label-free estimation: off (see the notes)")
    for note in view["notes"]:
        console.print(f"  note: {escape(str(note))}")


@app.command()
def create(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help=DEPLOYMENT_HELP),
    reference: str = typer.Option(
        None,
        "--reference",
        "-r",
        help="Model version whose training data is the reference (churn@3, churn@champion; "
        "default: the version taking most of the traffic now). An alias is resolved now.",
    ),
    features: list[str] = typer.Option(
        None, "--features", "-f", help="Inputs to test: a,b or repeated (default: all)."
    ),
    window: str = typer.Option(
        "1h", "--window", "-w", help="What one run covers: a duration (1h, 30m) or last:N rows."
    ),
    last: int = typer.Option(
        None, "--last", min=1, help="One run covers the newest N rows (same as --window last:N)."
    ),
    drift_share: float = typer.Option(
        0.5, "--drift-share", help="The window drifted when this share of features did."
    ),
    rules: Path = typer.Option(
        None,
        "--rules",
        help="Alert rules: a YAML or JSON list (default: any drift warns, dataset drift and "
        "over 5% errors are critical).",
    ),
    sink: list[str] = typer.Option(
        None, "--sink", help="Where alerts go: log, webhook=URL or slack=URL (repeatable)."
    ),
    cooldown: str = typer.Option(
        "30m", "--cooldown", help="How long the same alert stays quiet after it fired."
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite the existing monitor."),
    trust: bool = typer.Option(
        False, "--trust", help="Allow loading a model whose flavor runs code (to profile it)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Freeze a reference for DEPLOYMENT and store its monitor (window, rules, sinks)."""
    from ctloop.monitoring.service import create_monitor

    names = [n.strip() for f in features or [] for n in f.split(",") if n.strip()] or None
    if last is not None:
        window = f"last:{last}"
    rule_specs = read_rules(rules) if rules is not None else None
    sink_specs = [parse_sink(s) for s in sink] if sink else None
    client = client_from(ctx)
    with console_err.status(f"profiling the reference of {deployment}…"):
        monitor = create_monitor(
            client,
            deployment,
            reference=reference,
            features=names,
            window=window,
            drift_share=drift_share,
            rules=rule_specs,
            sinks=sink_specs,
            cooldown=cooldown,
            replace=replace,
            trust=trust,
        )
    if as_json:
        print_json(monitor_view(monitor))
        return
    _tell_frozen(monitor, "created ")
    console.print(f"run it with: ctloop monitor run {escape(deployment)}")


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)
) -> None:
    """List monitors: deployment, reference, window, drift share, rules, sinks."""
    found = client_from(ctx).monitors.list()
    if as_json:
        print_json([monitor_view(m) for m in found])
        return
    if not found:
        console.print(
            "no monitors yet; create one with: ctloop monitors create DEPLOYMENT "
            "--reference MODEL@ALIAS"
        )
        return
    table = Table(
        "deployment", "reference", "window", "drift share", "rules", "sinks", "created", box=None
    )
    for m in found:
        table.add_row(
            escape(m.deployment),
            escape(m.reference),
            escape(m.window),
            f"{m.drift_share:g}",
            str(len(m.rules)),
            escape(", ".join(sink_text(s) for s in m.sinks) or "-"),
            fmt_time(m.created_at),
        )
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help=DEPLOYMENT_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a monitor: reference, rules, sinks, and the profiled columns with their kinds."""
    from ctloop.monitoring.service import monitor_of

    monitor = monitor_of(client_from(ctx), deployment)
    if as_json:
        print_json(monitor_view(monitor))
        return
    _tell_frozen(monitor, "")
    console.print(
        f"  created {fmt_time(monitor.created_at)} by {escape(monitor.created_by or '-')}, "
        f"updated {fmt_time(monitor.updated_at)}"
    )
    table = Table("column", "kind", "rows", "missing", "tested", box=None)
    tested = set(monitor.features) if monitor.features is not None else None
    for c in _columns(monitor):
        on = tested is None or c["name"] in tested or c["name"] == "prediction"
        table.add_row(
            escape(str(c["name"])), str(c["kind"]), str(c["rows"]), str(c["missing"]),
            "yes" if on else "no",
        )  # fmt: skip
    console.print(table)


@app.command()
def delete(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help=DEPLOYMENT_HELP),
) -> None:
    """Delete a deployment's monitor (its reports and alerts stay)."""
    from ctloop.monitoring.service import monitor_of

    client = client_from(ctx)
    monitor_of(client, deployment)  # the NotFound that says what to do
    client.monitors.delete(deployment)
    console.print(f"deleted the monitor of {escape(deployment)} (its reports and alerts stay)")
