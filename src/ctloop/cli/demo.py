"""``ctloop demo``: the main job on the embedded store."""

from __future__ import annotations

import typer

from ctloop.cli._output import console, fail


def register(app: typer.Typer) -> None:
    """Mount ``demo`` as a top-level command."""
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    store: str = typer.Option(
        None,
        "--store",
        help="Store to use (default: the root --store, else a new temporary folder).",
    ),
    rows: int = typer.Option(20_000, "--rows", min=1000, help="Rows of synthetic churn data."),
    seed: int = typer.Option(7, "--seed", help="Random seed of the data generator."),
    server: bool = typer.Option(
        True,
        "--server/--no-server",
        help="Also run the job once against a ctloop server started on a loopback port.",
    ),
    pipeline: bool = typer.Option(
        True,
        "--pipeline/--no-pipeline",
        help="Also run the churn training pipeline (examples/churn/pipeline.py) three times: "
        "cold, cached, on new data.",
    ),
    serving: bool = typer.Option(
        True,
        "--serving/--no-serving",
        help="Also serve the champion with ctloop serve, send traffic and feedback, read the "
        "metrics, then put another version on a 10% canary.",
    ),
    monitoring: bool = typer.Option(
        True,
        "--monitoring/--no-monitoring",
        help="Also monitor the served champion: inject a drift into its traffic at a known "
        "row, run the monitor before and after, write the HTML reports, fire the alerts. "
        "Exits 1 when the monitor misses the drift.",
    ),
    loop: bool = typer.Option(
        True,
        "--loop/--no-loop",
        help="Also close the loop on the drift: retrain, gate, canary 10/50/100%, promote; "
        "then catch a broken candidate at the gate and, forced past it, in its canary. "
        "Exits 1 when the loop does not act as expected.",
    ),
) -> None:
    """Run the main job: version churn data, train and track two models, summarise."""
    from ctloop.demo import run_demo

    root = ctx.find_root().obj or {}
    result = run_demo(
        store or root.get("store"),
        rows=rows,
        seed=seed,
        say=lambda line: console.print(line, markup=False),
        server=server,
        pipeline=pipeline,
        serving=serving,
        monitoring=monitoring,
        loop=loop,
    )
    # fail() exits through sys.exit: under main()'s standalone_mode=False a typer.Exit(1)
    # would come back as a return value and the process would exit 0
    if result.monitoring is not None and not result.monitoring.ok:
        fail("the monitor did not catch the injected drift as expected (see above)")
    if result.loop is not None and not result.loop.ok:
        fail(
            "the loop did not act as expected (promote the retrained model, roll back the one "
            "forced past the gate, reject the corrupted one at the gate; see the timeline above)"
        )
