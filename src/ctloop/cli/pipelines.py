"""``ctloop pipeline``: run a pipeline, list its runs, show one run's steps as a graph, trace
an artifact back to the steps and inputs that made it."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ctloop.cli._output import client_from, console, console_err, fail, fmt_time, print_json
from ctloop.errors import CtloopError
from ctloop.pipelines.entities import (
    ArtifactTrace,
    PipelineRun,
    PipelineStatus,
    StepRun,
    StepStatus,
)
from ctloop.pipelines.params import params_from_text

if TYPE_CHECKING:
    from rich.tree import Tree


app = typer.Typer(
    help="Pipelines: run one, list its runs, show a run's steps, cache hits and outputs.",
    no_args_is_help=True,
)

JSON_HELP = "Print JSON."
ERROR_LINES = 5  # lines of a failed step's error shown by `show` (its last ones)

STYLES = {
    "PENDING": "dim",
    "RUNNING": "yellow",
    "COMPLETED": "green",
    "CACHED": "cyan",
    "FAILED": "bold red",
    "TIMED_OUT": "bold red",
    "SKIPPED": "magenta",
}


class Executor(StrEnum):
    """Where steps run."""

    inline = "inline"
    local = "local"
    ray = "ray"


def register(app_: typer.Typer) -> None:
    """Mount this group as ``ctloop pipeline``."""
    app_.add_typer(app, name="pipeline")


# --- formatting ----------------------------------------------------------------------------


def _status(value: str) -> Text:
    return Text(value, style=STYLES.get(value, ""))


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _steps_cell(run: PipelineRun) -> str:
    hits = run.cache_hits
    return f"{len(run.steps)} ({hits} cached)" if hits else str(len(run.steps))


def _attempts(step: StepRun) -> str:
    return f"{step.attempts} attempt{'s' if step.attempts != 1 else ''}"


def _step_label(step: StepRun) -> Text:
    label = Text.assemble((step.name, "bold"))
    if step.upstream:
        label.append(f" ← {', '.join(step.upstream)}")
    label.append("  ")
    label.append_text(_status(step.status.value))
    if step.cache_hit:
        label.append(f"  cached from {(step.cached_from or '?')[:12]}", style="cyan")
    elif step.attempts:
        label.append(f"  {_attempts(step)}")
    if step.duration is not None:
        label.append(f"  {_took(step.duration)}")
    return label


def _step_node(tree: Tree, step: StepRun) -> None:
    node = tree.add(_step_label(step))
    for name, ref in step.outputs.items():
        node.add(Text(f"{name}  {ref.materializer}  {ref.digest[:12]}", style="dim"))
    failed = step.status in (StepStatus.FAILED, StepStatus.TIMED_OUT)
    if failed and step.error:
        lines = step.error.rstrip().splitlines()[-ERROR_LINES:]
        node.add(Text("\n".join(lines), style="red"))


def render(run: PipelineRun) -> None:
    """Print a pipeline run: its header, then each step in plan order as a tree."""
    from rich.tree import Tree

    title = Text.assemble((run.pipeline, "bold"), f"  {run.id}  ")
    title.append_text(_status(run.status.value))
    console.print(title)
    console.print(
        Text(
            f"executor {run.executor}  user {run.user}  tracking run {run.run_id or '-'}\n"
            f"started {fmt_time(run.start_time)}  ended {fmt_time(run.end_time)}  "
            f"took {_took(run.duration)}"
        )
    )
    if run.params:
        shown = "  ".join(f"{k}={json.dumps(v)}" for k, v in sorted(run.params.items()))
        console.print(Text(f"params {shown}"))
    if run.error:
        console.print(Text(f"error: {run.error.strip().splitlines()[0]}", style="red"))
    cached = f", {run.cache_hits} cached" if run.cache_hits else ""
    tree = Tree(f"steps ({len(run.steps)}{cached})")
    for step in run.steps:
        _step_node(tree, step)
    console.print(tree)


def _wire(run: PipelineRun) -> dict[str, Any]:
    from ctloop.client.http.pipelines import run_to_wire

    return run_to_wire(run)


# --- commands ------------------------------------------------------------------------------


@app.command("runs")
def runs(
    ctx: typer.Context,
    pipeline: str = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    status: str = typer.Option(None, "--status", help="Only RUNNING, COMPLETED or FAILED runs."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many (1-10000)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List pipeline runs, newest first."""
    if status is not None and status.upper() in PipelineStatus.__members__:
        status = status.upper()
    found = client_from(ctx).pipelines.list(pipeline, status, limit)
    if as_json:
        print_json([_wire(r) for r in found])
        return
    if not found:
        console.print("no pipeline runs yet; start one with: ctloop pipeline run MODULE:PIPELINE")
        return
    table = Table("id", "pipeline", "status", "executor", "steps", "started", "took", box=None)
    for r in found:
        table.add_row(
            r.id[:12],
            escape(r.pipeline),
            _status(r.status.value),
            r.executor,
            _steps_cell(r),
            fmt_time(r.start_time),
            _took(r.duration),
        )
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Pipeline run id (or its first 6+ characters)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one pipeline run and its steps as a graph.

    The run's params, status and times, then each step in plan order: its upstream steps,
    status, cache hit, attempts, duration, outputs and, for a failed step, its error.
    """
    run = client_from(ctx).pipelines.get(run_id)
    if as_json:
        print_json(_wire(run))
        return
    render(run)


@app.command()
def trace(
    ctx: typer.Context,
    digest: str = typer.Argument(
        ..., help="An artifact's sha256, or its first 8+ characters (as `show` prints them)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Trace an artifact back: the step run that wrote it, and what that step read, to the
    pipeline's first steps (with each step's params, e.g. the dataset version it loaded)."""
    from rich.tree import Tree

    found = client_from(ctx).pipelines.trace(digest)
    if as_json:
        print_json(found.to_dict())
        return
    tree = Tree(_trace_label(found, None))
    _trace_children(tree, found)
    console.print(tree)


def _trace_label(node: ArtifactTrace, arg: str | None) -> Text:
    label = Text()
    if arg is not None:
        label.append(f"{arg}: ", style="bold")
    label.append(node.digest[:12], style="cyan")
    if node.ref is not None:
        label.append(f"  {node.ref.materializer}")
    step = node.producer
    if step is None:
        label.append("  (no step wrote it: a value passed in when the run started)", style="dim")
        return label
    params = "  ".join(f"{k}={json.dumps(v)}" for k, v in sorted(step.params.items()))
    label.append(f"  ← {step.name}")
    if node.output and node.output != "output":
        label.append(f".{node.output}")
    if params:
        label.append(f"  {params}", style="dim")
    label.append(f"  run {step.pipeline_run_id[:12]} {fmt_time(step.end_time)}", style="dim")
    return label


def _trace_children(tree: Tree, node: ArtifactTrace) -> None:
    for arg, child in node.inputs.items():
        branch = tree.add(_trace_label(child, arg))
        _trace_children(branch, child)


@app.command("run")
def run_(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., help="The pipeline: MODULE:ATTRIBUTE (from the current folder) or FILE.py:ATTRIBUTE."
    ),
    param: list[str] = typer.Option(
        None,
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="A pipeline param (repeatable); typed by the pipeline function's annotations.",
    ),
    executor: Executor = typer.Option(
        Executor.local, "--executor", "-x", help="Where steps run.", case_sensitive=False
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, reuse nothing."),
    ray_address: str = typer.Option(
        None, "--ray-address", help="Ray cluster to join (default: start a local one)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run a pipeline and record it; exits 1 when it fails."""
    from ctloop.pipelines.definition import resolve_pipeline

    try:
        pipe = resolve_pipeline(target)
    except CtloopError:
        raise
    except Exception as exc:  # the user's module failed to import: say so, in one line
        fail(f"importing {target} failed: {type(exc).__name__}: {exc}")
    params = params_from_text(pipe, param or [])
    client = client_from(ctx)
    if not as_json:
        console_err.print(f"running pipeline {escape(pipe.name)} ({executor.value})…")
    done = pipe.run(
        executor=executor.value,
        cache=not no_cache,
        client=client,
        raise_on_failure=False,
        ray_address=ray_address,
        params=params,
    )
    if as_json:
        print_json(_wire(done))
    else:
        render(done)
    if done.status is PipelineStatus.FAILED:
        sys.exit(1)
