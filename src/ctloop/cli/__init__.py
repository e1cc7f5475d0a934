"""The ``ctloop`` command line: one Typer app per noun, errors as one clear line."""

from __future__ import annotations

import importlib
import os
import sys

import typer

from ctloop.cli._output import console_err, fail

__all__ = ["app", "main"]

app = typer.Typer(
    name="ctloop",
    help="ctloop keeps machine-learning models improving in production on their own.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

# noun -> module under ctloop.cli that defines ``app`` (a Typer) or ``register(app)``
_NOUNS = (
    "db",
    "data",
    "experiments",
    "runs",
    "models",
    "deployments",
    "pipelines",
    "demo",
    "server",
    "serve",
    "tokens",
    "build",
    "monitor",
    "monitors",
    "alerts",
    "loop",
)


def _install_nouns() -> None:
    for noun in _NOUNS:
        try:
            module = importlib.import_module(f"ctloop.cli.{noun}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ctloop.cli.{noun}":
                continue  # not built yet
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
        else:
            app.add_typer(module.app, name=noun)


@app.callback()
def _root(
    ctx: typer.Context,
    store: str = typer.Option(
        None,
        "--store",
        envvar="CTLOOP_STORE",
        help="Metadata store: a folder, sqlite:///FILE or postgresql+psycopg://… "
        "(default ./.ctloop).",
        show_envvar=True,
    ),
    artifacts: str = typer.Option(
        None,
        "--artifacts",
        envvar="CTLOOP_ARTIFACTS",
        help="Artifact store: a folder or s3://bucket/prefix (default: beside the store).",
        show_envvar=True,
    ),
) -> None:
    """ctloop keeps machine-learning models improving in production on their own."""
    ctx.obj = {"store": store, "artifacts": artifacts}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ctloop`` script: run a command, print errors as one line."""
    from ctloop.errors import CtloopError

    _install_nouns()
    try:
        code = app(args=argv, prog_name="ctloop", standalone_mode=False)
    except CtloopError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        console_err.print("interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except typer.Abort:
        console_err.print("aborted")
        sys.exit(1)
    except typer.exceptions.TyperException as exc:  # usage errors: Typer's bundled click
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            console_err.print(str(exc))
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception as exc:  # anything else is a bug, but still one line, no traceback
        if isinstance(exc, OSError):
            fail(f"{exc.strerror or exc}: {exc.filename!r}" if exc.filename else str(exc))
        if os.environ.get("CTLOOP_DEBUG"):
            raise
        fail(
            f"unexpected {type(exc).__name__}: {exc} "
            "(this is a ctloop bug; re-run with CTLOOP_DEBUG=1 for the traceback and report it)"
        )
    # without standalone mode, click returns a typer.Exit's code instead of exiting with it
    if isinstance(code, int) and code:
        sys.exit(code)
