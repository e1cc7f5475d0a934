"""``ctloop serve``: the inference server of one deployment (or model, or package folder)."""

from __future__ import annotations

import typer

from ctloop.cli._output import client_from, console_err, fail


def register(app: typer.Typer) -> None:
    """Mount ``serve`` as a top-level command."""
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    target: str = typer.Argument(
        ...,
        help="A deployment name, a model reference (churn@champion, churn/3: an ad-hoc "
        "deployment that follows it) or a model package folder (from ctloop build).",
    ),
    name: str = typer.Option(
        None, "--name", help="Model name the protocols use (default: the deployment's or model's)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, max=64, help="Worker processes (they share the stores only)."
    ),
    log_payloads: bool = typer.Option(
        True,
        "--log-payloads/--no-log-payloads",
        help="Write every served row to the prediction log (logs/<deployment>/predictions/).",
    ),
    max_batch_rows: int = typer.Option(
        64, "--max-batch-rows", min=1, help="Most rows of concurrent requests in one predict."
    ),
    max_wait_ms: float = typer.Option(
        0.0, "--max-wait-ms", min=0.0, help="How long an idle model waits for company (ms)."
    ),
    max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="Most rows per request."),
    poll_seconds: float = typer.Option(
        1.0, "--poll-seconds", min=0.05, max=60.0, help="How often the deployment is re-read."
    ),
    monitor_poll_seconds: float = typer.Option(
        10.0,
        "--monitor-poll-seconds",
        min=0.0,
        help="How often the newest monitoring report is read into the drift gauges (0: never).",
    ),
    log_flush_seconds: float = typer.Option(
        5.0,
        "--log-flush-seconds",
        min=0.05,
        help="Longest a logged row waits in memory: the loss window if the process crashes.",
    ),
    log_flush_rows: int = typer.Option(
        1000, "--log-flush-rows", min=1, help="Queued log rows that trigger a segment write."
    ),
    trust: bool = typer.Option(
        False, "--trust", help="Allow a package whose flavor runs code on load (python flavor)."
    ),
) -> None:
    """Serve predictions over OIP (KServe V2), KServe V1, MLflow scoring and POST /predict."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        fail("serving needs its extra; install it with: pip install 'ctloop[server]'")
    from ctloop.serving.launch import ServeSpec, log_root_of, resolve_target, serve

    root = ctx.find_root().obj or {}
    from pathlib import Path

    is_folder = Path(target).expanduser().is_dir()
    client = None if is_folder else client_from(ctx)
    kind = resolve_target(client, target)
    spec = ServeSpec(
        kind=kind,
        target=str(Path(target).expanduser().resolve()) if kind == "package" else target,
        name=name,
        store=root.get("store"),
        artifacts=root.get("artifacts"),
        trust=trust,
        config={
            "max_batch_rows": max_batch_rows,
            "max_wait_ms": max_wait_ms,
            "max_rows": max_rows,
            "poll_seconds": poll_seconds,
            "monitor_poll_seconds": monitor_poll_seconds,
            "log_payloads": log_payloads,
            "log_flush_seconds": log_flush_seconds,
            "log_flush_rows": log_flush_rows,
        },
    )
    logs = "logging predictions" if log_payloads else "not logging predictions"
    if log_payloads:
        log_root, _ = log_root_of(client, spec)
        logs += f" under {log_root}/logs/"
    what = {"deployment": "deployment", "ref": "model", "package": "package"}[kind]
    console_err.print(
        f"serving {what} {target} at http://{host}:{port} ({workers} worker"
        f"{'s' if workers > 1 else ''}, {logs}); OIP at /v2, metrics at /metrics",
        highlight=False,
    )
    if client is not None:
        client.close()
    serve(spec, host=host, port=port, workers=workers)
