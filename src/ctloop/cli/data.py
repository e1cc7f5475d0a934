"""``ctloop data``: add, list, show, download, compare and validate versioned datasets."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ctloop.cli._output import client_from, console, console_err, fmt_size, fmt_time, print_json
from ctloop.errors import NotFound

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.data.diff import DatasetDiff
    from ctloop.data.entities import DatasetVersion
    from ctloop.validation import CheckResult, ValidationReport

app = typer.Typer(
    help="Version data files and folders: add, list, show, get, diff and validate datasets.",
    no_args_is_help=True,
)

REF_HELP = "Dataset reference: NAME (the latest version), NAME@latest or NAME@VERSION."


@contextlib.contextmanager
def _progress(
    client: Client, label: str, total: int | None, quiet: bool
) -> Iterator[Callable[[int], None] | None]:
    """A byte progress bar on stderr, when wanted and stderr is a terminal."""
    if quiet or not client.settings.data.progress or not console_err.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    extra = (TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, *extra, console=console_err, transient=True) as bar:
        task = bar.add_task(escape(label), total=total)
        yield lambda n: bar.advance(task, n)


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _cell(value: Any) -> str:
    return escape(_num(value))


def _summary(v: DatasetVersion) -> str:
    files = "1 file" if v.file_count == 1 else f"{v.file_count} files"
    rows = f", {v.row_count:,} rows" if v.row_count is not None else ""
    return f"{v.ref}  {v.digest[:12]}  {fmt_size(v.size)}, {files}{rows}"


def _fields(v: DatasetVersion) -> dict[str, Any]:
    return {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}


@app.command()
def add(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="File or folder to add."),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name (created on first add)."),
    description: str = typer.Option(None, "--description", "-d", help="What the dataset is."),
    no_pointer: bool = typer.Option(
        False, "--no-pointer", help="Do not write PATH.ctloop.yaml beside the data."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add a file or folder as the next version of a dataset, if its content changed."""
    if not path.exists():  # before opening (and maybe creating) the store
        raise NotFound(f"no such file or folder: {str(path)!r}")
    client = client_from(ctx)
    total = _tree_size(path) if console_err.is_terminal else None
    with _progress(client, f"adding {path}", total, as_json) as progress:
        v = client.datasets.add(path, name, description, not no_pointer, progress)
    pointer = None if no_pointer else str(_pointer_path(path))
    if as_json:
        print_json({**_fields(v), "unchanged": not v.is_new, "pointer": pointer})
        return
    state = "added" if v.is_new else "unchanged"
    console.print(f"{state} {escape(_summary(v))}")
    if pointer:
        console.print(f"pointer {escape(pointer)}")
    if v.profile and "error" in v.profile:
        console_err.print(f"warning: not profiled: {escape(str(v.profile['error']))}")


def _pointer_path(path: Path) -> Path:
    from ctloop.data.pointer import pointer_path

    return pointer_path(path)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List datasets with their latest version."""
    datasets = client_from(ctx).datasets.list()
    if as_json:
        print_json(datasets)
        return
    if not datasets:
        console.print("no datasets yet; add one with: ctloop data add PATH --name NAME")
        return
    table = Table("name", "latest", "versions", "updated", "description", box=None)
    for d in datasets:
        table.add_row(
            escape(d.name),
            _cell(d.latest_version),
            str(d.version_count),
            fmt_time(d.updated_at),
            escape(d.description or ""),
        )
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a version (digest, size, schema and profile); a plain NAME also lists versions."""
    client = client_from(ctx)
    v = client.datasets.get(ref)
    dataset = client.datasets.info(v.name)
    versions = client.datasets.versions(v.name) if "@" not in ref else None
    if as_json:
        out: dict[str, Any] = {"dataset": dataset, "version": v}
        if versions is not None:
            out["versions"] = versions
        print_json(out)
        return
    latest = " (latest)" if v.version == dataset.latest_version else ""
    console.print(f"[bold]{escape(v.ref)}[/]{latest}")
    if dataset.description:
        console.print(f"  {escape(dataset.description)}")
    console.print(f"  digest   {v.digest}  ({v.kind})")
    console.print(f"  size     {fmt_size(v.size)} in {v.file_count} file(s)")
    if v.format:
        rows = f", {v.row_count:,} rows" if v.row_count is not None else ""
        console.print(f"  format   {v.format}{rows}")
    console.print(f"  source   {escape(v.source_path or '-')}")
    console.print(f"  created  {fmt_time(v.created_at)} by {escape(v.created_by or '-')}")
    if v.profile and "error" in v.profile:
        console.print(f"  profile  not computed: {escape(str(v.profile['error']))}")
    if v.schema:
        console.print(_profile_table(v))
    if versions:
        table = Table("version", "digest", "size", "files", "rows", "created", "by", box=None)
        for x in versions:
            table.add_row(
                str(x.version),
                x.digest[:12],
                fmt_size(x.size),
                str(x.file_count),
                _cell(x.row_count),
                fmt_time(x.created_at),
                escape(x.created_by or "-"),
            )
        console.print(table)


def _profile_table(v: DatasetVersion) -> Table:
    columns = (v.profile or {}).get("columns") or {}
    heads = ("column", "type", "nulls", "distinct", "min", "max", "mean", "std", "p50", "top")
    table = Table(*heads, box=None)
    for field in v.schema or []:
        p = columns.get(field["name"]) or {}
        top = ", ".join(f"{t['value']} ({t['count']})" for t in (p.get("top") or [])[:3])
        if p.get("kind") == "boolean":
            top = f"true {p.get('true')}, false {p.get('false')}"
        stats = ("null_count", "distinct", "min", "max", "mean", "std")
        table.add_row(
            escape(field["name"]),
            escape(field["type"]),
            *(_cell(p.get(k)) for k in stats),
            _cell((p.get("quantiles") or {}).get("p50")),
            escape(top),
        )
    return table


@app.command()
def get(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Where to write the data (a file inside an existing folder)."
    ),
) -> None:
    """Download a version's data, verified against its digest."""
    client = client_from(ctx)
    v = client.datasets.get(ref)
    with _progress(client, f"getting {v.ref}", v.size, False) as progress:
        written = client.datasets.download(v, output, progress=progress)
    console.print(f"wrote {escape(v.ref)} to {escape(str(written))} ({fmt_size(v.size)})")


@app.command()
def diff(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="The version to compare from (" + REF_HELP + ")"),
    b: str = typer.Argument(..., help="The version to compare to (" + REF_HELP + ")"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare two versions: content, schema, row count and per-column statistics."""
    d = client_from(ctx).datasets.diff(a, b)
    if as_json:
        fields = {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}
        print_json({**fields, "identical": d.identical, "schema_changed": d.schema_changed})
        return
    console.print(f"[bold]{escape(d.a)} → {escape(d.b)}[/]")
    for line in _diff_lines(d):
        console.print("  " + escape(line))


def _diff_lines(d: DatasetDiff) -> list[str]:
    if d.identical:
        return ["identical content"]
    lines: list[str] = []
    for label, change in (("digest", d.digest), ("kind", d.kind), ("format", d.format)):
        if change is not None:
            lines.append(f"{label}: {change.before} → {change.after}")
    if d.size is not None:
        lines.append(f"size: {fmt_size(d.size.before)} → {fmt_size(d.size.after)}")
    for label, change in (("files", d.file_count), ("rows", d.row_count)):
        if change is not None:
            lines.append(f"{label}: {_num(change.before)} → {_num(change.after)}")
    lines += [f"+ column {c['name']} ({c['type']})" for c in d.added_columns]
    lines += [f"- column {c['name']} ({c['type']})" for c in d.removed_columns]
    for c in d.changed_columns:
        if c.type is not None:
            lines.append(f"~ column {c.name} type {c.type.before} → {c.type.after}")
        if c.nullable is not None:
            lines.append(f"~ column {c.name} nullable {c.nullable.before} → {c.nullable.after}")
    for s in d.column_stats:
        moves = [f"{k} {_num(c.before)} → {_num(c.after)}" for k, c in s.changes.items()]
        if s.new_categories:
            moves.append("new top values " + ", ".join(map(str, s.new_categories)))
        if s.vanished_categories:
            moves.append("vanished top values " + ", ".join(map(str, s.vanished_categories)))
        lines.append(f"{s.name}: " + "; ".join(moves))
    return lines


# --- validation ---------------------------------------------------------------------------


@app.command()
def suite(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write the suite's YAML to this file (default: print it)."
    ),
    attach: bool = typer.Option(
        False, "--attach", help="Attach the suite to the version, for `ctloop data validate`."
    ),
    name: str = typer.Option("default", "--name", help="The name to attach the suite under."),
    warn: str = typer.Option(
        "row_count",
        "--warn",
        help="Kinds of check to give severity warn, comma-separated (e.g. row_count,range); "
        "'' for none.",
    ),
    margin: float = typer.Option(
        1.0, "--margin", help="How far numeric ranges reach past the data's, as a share of it."
    ),
) -> None:
    """Infer a validation suite from a version: dtypes, nulls, ranges, categories, ids, rows."""
    from ctloop.validation import infer_suite

    client = client_from(ctx)
    kinds = [k.strip() for k in warn.split(",") if k.strip()]
    inferred = infer_suite(client.datasets.get(ref), client=client, margin=margin, warn=kinds)
    what = (
        f"{len(inferred.checks)} checks on {len(inferred.columns)} columns, "
        f"inferred from {inferred.inferred_from}"
    )
    if output is not None:
        inferred.save(output)
        console.print(f"wrote {escape(str(output))}: {escape(what)}")
    if attach:
        record = client.datasets.attach_suite(inferred.inferred_from or ref, inferred, name)
        console.print(
            f"attached as suite '{escape(record.name)}' of {escape(record.dataset)} "
            f"({record.digest[:12]}); validate with: ctloop data validate {escape(record.dataset)}"
        )
    if output is None and not attach:
        sys.stdout.write(inferred.to_yaml())


@app.command()
def validate(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    suite_file: Path = typer.Option(
        None,
        "--suite",
        "-s",
        help="The suite's YAML file (default: the suite attached to the version).",
    ),
    name: str = typer.Option(
        "default", "--name", help="Which attached suite to use when no --suite is given."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Validate a version against a suite; exit 1 when a check of severity error fails."""
    from ctloop.validation import load, load_frame
    from ctloop.validation import validate as run_suite

    checks = load(suite_file) if suite_file is not None else None  # before opening the store
    client = client_from(ctx)
    version = client.datasets.get(ref)
    if checks is None:
        try:
            checks = client.datasets.get_suite(version, name)
        except NotFound as exc:
            raise NotFound(
                f"{exc}; or validate against a suite file: "
                f"ctloop data validate {version.ref} --suite FILE"
            ) from None
    report = run_suite(load_frame(client, version), checks, dataset=version.ref)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.success:
        sys.exit(1)


_MARKS = {"passed": "[green]ok[/]", "skipped": "[dim]skip[/]"}


def _print_report(report: ValidationReport) -> None:
    order = {"failed": 0, "skipped": 1, "passed": 2}
    ranked = sorted(report.results, key=lambda r: (order[r.status], r.severity != "error"))
    table = Table("", "check", "severity", "expected", "observed", "failing", "e.g.", box=None)
    for r in ranked:
        table.add_row(
            _mark(r),
            escape(r.check),
            r.severity,
            escape(_brief(r.expected)),
            escape(_brief(r.observed)),
            _cell(r.failure_count) if r.failure_count else "",
            escape(_examples(r)),
        )
    console.print(table)
    style = "green" if report.success else "bold red"
    console.print(f"[{style}]{escape(report.summary())}[/]")


def _mark(r: CheckResult) -> str:
    if r.status != "failed":
        return _MARKS[r.status]
    return "[bold red]FAIL[/]" if r.severity == "error" else "[yellow]warn[/]"


def _brief(value: Any, limit: int = 60) -> str:
    """Expected or observed values in a few words: ``min 0, max 10``; ``a, b, c (+7)``."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        text = ", ".join(f"{k.replace('_', ' ')} {_brief(v, limit)}" for k, v in value.items())
    elif isinstance(value, list):
        shown = [_num(v) for v in value[:5]]
        more = f" (+{len(value) - 5})" if len(value) > 5 else ""
        text = "[" + ", ".join(shown) + more + "]"
    else:
        text = _num(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _examples(r: CheckResult) -> str:
    from ctloop.validation.report import format_rows

    return format_rows(r.failing_rows[:3]) if r.failing_rows else ""
