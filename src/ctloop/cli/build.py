"""``ctloop build``: a container build context (Dockerfile, model, Kubernetes manifests)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ctloop.cli._output import client_from, console, print_json


def register(app: typer.Typer) -> None:
    """Mount ``build`` as a top-level command."""
    app.command("build")(build)


def build(
    ctx: typer.Context,
    target: str = typer.Argument(
        ...,
        help="A deployment name, or a model reference: NAME@ALIAS (churn@champion), NAME/V "
        "or NAME (the latest version). A deployment must route to one version.",
    ),
    out_dir: Path = typer.Option(
        ..., "--output", "-o", help="Folder to write (must not exist or be empty)."
    ),
    name: str = typer.Option(
        None,
        "--name",
        help="Name the model is served under (default: the deployment's or the model's name).",
    ),
    image: str = typer.Option(
        None, "--image", help="Image reference for the manifests (default NAME:vVERSION)."
    ),
    base_image: str = typer.Option(
        None, "--base-image", help="FROM image (default python:MAJOR.MINOR-slim of the package)."
    ),
    wheel: list[Path] = typer.Option(
        None, "--wheel", help="A wheel to copy into wheels/ for pip, e.g. ctloop's (repeatable)."
    ),
    trust: bool = typer.Option(
        False, "--trust", help="Allow a package whose flavor runs code on load (python flavor)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an earlier build context in the output folder."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was built as JSON."),
) -> None:
    """Write a container build context: Dockerfile, model package and Kubernetes manifests."""
    from ctloop.serving.build import build_context

    result = build_context(
        client_from(ctx),
        target,
        out_dir,
        name=name,
        image=image,
        base_image=base_image,
        wheels=wheel or (),
        trust=trust,
        force=force,
    )
    if as_json:
        print_json(result.to_dict())
        return
    out = escape(str(result.out_dir))
    console.print(
        f"wrote {out}: {escape(result.model_ref)} served as {escape(result.name)} "
        f"(package {result.package_digest[:12]}, python {result.python_version}, "
        f"ctloop {result.ctloop_version})"
    )
    console.print(f"build it with: docker build -t {escape(result.image)} {out}")
    console.print(
        f"deploy it with: kubectl apply -f {out}/k8s/deployment.yaml -f {out}/k8s/service.yaml"
    )
