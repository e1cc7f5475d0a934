"""``ctloop runs``: list, show and compare runs."""

from __future__ import annotations

import math

import typer
from rich.table import Table

from ctloop.cli._output import client_from, console, fmt_size, fmt_time, print_json
from ctloop.tracking.entities import RunRecord

app = typer.Typer(help="List, search, show and compare tracked runs.", no_args_is_help=True)


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _duration(run: RunRecord) -> str:
    d = run.duration_s
    return "-" if d is None else f"{d:.1f}s"


@app.command("list")
def list_(
    ctx: typer.Context,
    experiment: list[str] = typer.Option(None, "--experiment", "-e", help="Only these."),
    filter_: str = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.auc > 0.8 and params.model = 'rf'\""
    ),
    order_by: list[str] = typer.Option(None, "--order-by", "-o", help="e.g. 'metrics.auc DESC'"),
    limit: int = typer.Option(50, "--limit", "-n", help="Page size (1-10000)."),
    page_token: str = typer.Option(None, "--page-token", help="Token printed by a prior page."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List runs, newest first, with an MLflow-style filter and ordering."""
    page = client_from(ctx).runs.search(
        experiment or None, filter_, order_by or None, limit, page_token
    )
    if as_json:
        print_json({"runs": page.runs, "next_page_token": page.next_page_token})
        return
    if not page.runs:
        console.print("no runs match")
        return
    from ctloop.store.filters import parse_order_by

    # metrics the user orders by come first, then the rest alphabetically
    ordered = [o.key for o in parse_order_by(order_by or None) if o.entity == "metric"]
    present = {k for r in page.runs for k in r.metrics}
    metric_keys = [k for k in ordered if k in present]
    metric_keys += sorted(present - set(metric_keys))
    metric_keys = metric_keys[:5]
    table = Table("id", "name", "experiment", "status", "started", "took", *metric_keys, box=None)
    for r in page.runs:
        cells = [_num(r.metrics[k]) if k in r.metrics else "-" for k in metric_keys]
        table.add_row(
            r.id,
            r.name,
            r.experiment,
            r.status.value,
            fmt_time(r.start_time),
            _duration(r),
            *cells,
        )
    console.print(table)
    if page.next_page_token:
        console.print(f"more: --page-token {page.next_page_token}")


@app.command()
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show everything about one run: params, metrics, tags, inputs, artifacts, code."""
    r = client_from(ctx).runs.get(run_id)
    if as_json:
        print_json(r)
        return
    console.print(f"[bold]{r.name}[/]  {r.id}", markup=True)
    console.print(f"experiment {r.experiment}  status {r.status.value}  user {r.user}")
    console.print(
        f"started {fmt_time(r.start_time)}  ended {fmt_time(r.end_time)}  took {_duration(r)}"
    )
    src = r.source
    if src.get("git_commit"):
        dirty = (
            " (dirty, diff sha256 " + str(src.get("git_diff_sha256"))[:12] + ")"
            if src.get("git_dirty")
            else ""
        )
        console.print(f"code {src['git_commit'][:12]}{dirty}")
    env = r.environment
    if env:
        pkgs = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
        console.print(f"python {env.get('python')} on {env.get('platform')}; {pkgs}")
    for title, items in (("params", r.params), ("tags", r.tags)):
        if items:
            table = Table(title, "value", box=None)
            for key, text in sorted(items.items()):
                table.add_row(key, text)
            console.print(table)
    if r.metrics:
        table = Table("metric", "latest", box=None)
        for k, v in sorted(r.metrics.items()):
            table.add_row(k, _num(v))
        console.print(table)
    for i in r.inputs:
        console.print(f"input {i.dataset}@{i.version} ({i.context or '-'}) {i.digest[:12]}")
    for a in r.artifacts:
        console.print(f"artifact {a.path} [{a.kind}] {fmt_size(a.size)} {a.digest[:12]}")
    if r.error:
        console.print(f"error: {r.error.splitlines()[0]}")


@app.command()
def compare(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    all_: bool = typer.Option(False, "--all", help="Also show params that are equal."),
) -> None:
    """Compare runs side by side: params that differ and every metric."""
    client = client_from(ctx)
    runs = [client.runs.get(i) for i in run_ids]
    param_keys = sorted({k for r in runs for k in r.params})
    if not all_:
        param_keys = [k for k in param_keys if len({r.params.get(k) for r in runs}) > 1]
    metric_keys = sorted({k for r in runs for k in r.metrics})
    if as_json:
        print_json(
            {
                "runs": [r.id for r in runs],
                "params": {k: [r.params.get(k) for r in runs] for k in param_keys},
                "metrics": {k: [r.metrics.get(k) for r in runs] for k in metric_keys},
            }
        )
        return
    table = Table("", *[f"{r.name}\n{r.id[:12]}" for r in runs], box=None)
    for k in param_keys:
        table.add_row(f"params.{k}", *[r.params.get(k, "-") for r in runs])
    for k in metric_keys:
        vals = [r.metrics.get(k) for r in runs]
        table.add_row(f"metrics.{k}", *["-" if v is None else _num(v) for v in vals])
    console.print(table)


@app.command()
def metrics(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id."),
    key: str = typer.Argument(..., help="Metric key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the full history of one metric of a run."""
    history = client_from(ctx).runs.metric_history(run_id, key)
    if as_json:
        print_json(history)
        return
    table = Table("step", key, "time", box=None)
    for m in history:
        table.add_row(str(m.step), _num(m.value), fmt_time(m.timestamp))
    console.print(table)
