"""``ctloop monitor``: drift and performance reports.

``report`` compares two files; ``run``, ``reports`` and ``show`` (in
:mod:`ctloop.cli.monitor_runs`) run a deployment's monitor and read its stored reports.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ctloop.cli import monitor_runs
from ctloop.cli._output import console_err
from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    help="Monitor data and models: run a deployment's monitor, read its reports, or compare "
    "two files.",
    no_args_is_help=True,
)
app.command("run")(monitor_runs.run)
app.command("reports")(monitor_runs.reports)
app.command("show")(monitor_runs.show)

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a frame; one clear error when it cannot be read."""
    import pandas as pd

    if not path.exists():
        raise InvalidInput(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise InvalidInput(f"{str(path)!r} is a folder; give a .parquet or .csv file")
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"cannot read {str(path)!r}: unknown format {path.suffix or '(no suffix)'!r}; "
            "give a .parquet or .csv file"
        )
    try:
        return pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except Exception as exc:  # any reader failure is the file's fault, said in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"cannot read {str(path)!r} as {kind}: {first}") from None


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInput(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it private; a report is a normal file
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@app.command()
def report(
    reference: Path = typer.Argument(..., help="Reference data: a .parquet or .csv file."),
    current: Path = typer.Argument(..., help="Current data: a .parquet or .csv file."),
    output: Path = typer.Option(
        Path("report.html"), "--output", "-o", help="The HTML file to write."
    ),
    as_json: bool = typer.Option(False, "--json", help="Also print the report as JSON."),
    columns: str = typer.Option(
        None,
        "--columns",
        help="Comma-separated columns to test (default: the common columns except "
        "the prediction, time and identifier columns).",
    ),
    drift_share: float = typer.Option(
        0.5, "--drift-share", help="The dataset drifts when this share of columns does."
    ),
) -> None:
    """Compare CURRENT with REFERENCE column by column; write a standalone HTML report."""
    from ctloop.monitoring.html import render_html
    from ctloop.monitoring.report import build_report

    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    result = build_report(
        read_table(reference),
        read_table(current),
        columns=names,
        drift_share=drift_share,
        reference_source=reference.name,
        current_source=current.name,
    )
    _write_atomically(output, render_html(result))
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    drifted = result.drifted_columns
    verdict = "dataset drift" if result.drifted else "no dataset drift"
    named = f" ({', '.join(drifted)})" if drifted else ""
    console_err.print(
        f"{verdict}: {len(drifted)} of {len(result.dataset_drift['columns'])} columns "
        f"drifted{named}; wrote {output}",
        markup=False,
    )
