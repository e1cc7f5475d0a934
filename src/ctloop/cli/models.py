"""``ctloop models``: the model registry — versions, aliases, rollbacks, lineage, tags."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ctloop.cli._output import client_from, console, fmt_time, print_json
from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from rich.tree import Tree

    from ctloop.registry.entities import AliasEvent, Lineage, ModelVersion

app = typer.Typer(
    help="The model registry: versions, aliases (champion, challenger …), rollbacks, lineage.",
    no_args_is_help=True,
)

REF_HELP = "Model version: NAME/VERSION, NAME@ALIAS or NAME (the latest)."
JSON_HELP = "Print JSON."


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def _v(version: int | None) -> str:
    return "-" if version is None else str(version)


def _version_line(v: ModelVersion) -> str:
    aliases = f"  @{', @'.join(v.aliases)}" if v.aliases else ""
    return f"{v.ref}{aliases}  {v.flavor}  {v.status.value}  run {v.run_id}"


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)
) -> None:
    """List registered models with their latest version and aliases."""
    models = client_from(ctx).models.list()
    if as_json:
        print_json(models)
        return
    if not models:
        console.print(
            "no models yet; register one with: ctloop.register_model(RUN_ID, 'model', name=NAME)"
        )
        return
    table = Table("name", "latest", "versions", "aliases", "updated", "description", box=None)
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in m.aliases.items()) or "-"
        table.add_row(
            escape(m.name),
            _v(m.latest_version),
            str(m.version_count),
            escape(aliases),
            fmt_time(m.updated_at),
            escape(m.description or ""),
        )
    console.print(table)


@app.command()
def versions(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List every version of a model, oldest first."""
    found = client_from(ctx).models.versions(name)
    if as_json:
        print_json(found)
        return
    keys = sorted({k for v in found for k in v.metrics})[:4]
    table = Table("version", "aliases", "flavor", "status", "created", "by", "run", *keys, box=None)
    for v in found:
        table.add_row(
            str(v.version),
            escape(", ".join(v.aliases) or "-"),
            v.flavor,
            v.status.value,
            fmt_time(v.created_at),
            escape(v.created_by or "-"),
            v.run_id,
            *[_num(v.metrics[k]) if k in v.metrics else "-" for k in keys],
        )
    console.print(table)


def _signature_table(signature: dict[str, Any]) -> Table:
    table = Table("input", "dtype", "nullable", box=None, title=None)
    for col in signature.get("inputs") or []:
        table.add_row(
            escape(str(col.get("name"))), escape(str(col.get("dtype"))), str(col.get("nullable"))
        )
    return table


@app.command()
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one version: package, run, signature, metrics at registration, tags."""
    v = client_from(ctx).models.get_version(ref)
    if as_json:
        print_json(v)
        return
    console.print(f"[bold]{escape(_version_line(v))}[/]", markup=True)
    console.print(f"package {v.package_digest}  (artifact '{escape(v.artifact_path)}')")
    console.print(f"created {fmt_time(v.created_at)} by {escape(v.created_by or '-')}")
    if v.description:
        console.print(escape(v.description))
    if v.signature:
        console.print(_signature_table(v.signature))
        output = v.signature.get("output") or {}
        classes = output.get("classes")
        extra = f"  classes {escape(', '.join(map(str, classes)))}" if classes else ""
        console.print(f"output {escape(str(output.get('kind', '-')))}{extra}")
    for title, items in (
        ("metric", {k: _num(x) for k, x in v.metrics.items()}),
        ("tag", v.tags),
    ):
        if items:
            table = Table(title, "value", box=None)
            for key, text in sorted(items.items()):
                table.add_row(escape(key), escape(text))
            console.print(table)


@app.command()
def promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version number the alias will point to."),
    alias: str = typer.Option("champion", "--alias", "-a", help="Alias to set or move."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (kept in the alias history)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Point an alias (default champion) at a version; the move is recorded."""
    models = client_from(ctx).models
    before = models.get(name).aliases.get(alias)
    v = models.set_alias(name, alias, version, reason=reason)
    if as_json:
        print_json({"version": v, "from_version": before, "moved": before != v.version})
        return
    if before == v.version:
        console.print(f"{escape(name)}@{escape(alias)} already points to {v.version}")
        return
    console.print(f"{escape(name)}@{escape(alias)}: {_v(before)} → {v.version}")


@app.command()
def rollback(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Option("champion", "--alias", "-a", help="Alias to roll back."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the alias history)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Move an alias back to the version before its latest move (again: further back)."""
    client = client_from(ctx)
    v = client.models.rollback(name, alias, reason=reason)
    last = client.models.alias_history(name, alias)[-1]
    if as_json:
        print_json({"version": v, "event": last})
        return
    console.print(
        f"rolled back {escape(name)}@{escape(alias)}: {_v(last.from_version)} → {v.version}"
    )


@app.command("delete-alias")
def delete_alias(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Option(..., "--alias", "-a", help="Alias to delete."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the alias history)."),
) -> None:
    """Delete an alias (its history stays; a rollback restores it)."""
    client_from(ctx).models.delete_alias(name, alias, reason=reason)
    console.print(f"deleted {escape(name)}@{escape(alias)}")


def _event_row(e: AliasEvent) -> list[str]:
    return [
        fmt_time(e.created_at),
        escape(e.alias),
        e.action,
        f"{_v(e.from_version)} → {_v(e.to_version)}",
        escape(e.actor),
        escape(e.reason or ""),
    ]


@app.command()
def aliases(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Option(None, "--alias", "-a", help="Only this alias."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a model's aliases now and every move they made (who, when, from, to, why)."""
    client = client_from(ctx)
    model = client.models.get(name)
    history = client.models.alias_history(name, alias)
    current = {a: v for a, v in model.aliases.items() if alias is None or a == alias}
    if as_json:
        print_json({"aliases": current, "history": history})
        return
    for a, v in current.items():
        console.print(f"{escape(name)}@{escape(a)} → {v}")
    if not history:
        console.print("no alias moves yet")
        return
    table = Table("when", "alias", "action", "from → to", "who", "reason", box=None)
    for e in history:
        table.add_row(*_event_row(e))
    console.print(table)


def _lineage_tree(lin: Lineage) -> Tree:
    from rich.tree import Tree

    v, run = lin.version, lin.run
    root = Tree(f"[bold]{escape(v.ref)}[/]  {escape(lin.flavor)}  package {lin.package_digest}")
    node = root.add(
        f"run {run.id}  {escape(run.name)}  ({escape(run.experiment)}, {run.status}, "
        f"{escape(run.user)}, {fmt_time(run.start_time)})"
    )
    if run.params:
        params = node.add("params")
        for k, text in sorted(run.params.items()):
            params.add(f"{escape(k)} = {escape(text)}")
    inputs = node.add("inputs" if lin.inputs else "inputs: none recorded")
    for i in lin.inputs:
        inputs.add(f"{escape(i.dataset)}@{i.version}  ({escape(i.context or '-')})  {i.digest}")
    if lin.code is None:
        node.add("code: not recorded (the run was not started in a git repository)")
    else:
        dirty = "  (dirty)" if lin.code.git_dirty else ""
        branch = f"  {escape(lin.code.git_branch)}" if lin.code.git_branch else ""
        node.add(f"code {lin.code.git_commit}{branch}{dirty}")
    if lin.pipeline_run:
        root.add(f"pipeline run {escape(lin.pipeline_run)}")
    return root


@app.command()
def lineage(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show where a version came from: run, input dataset versions, code."""
    lin = client_from(ctx).models.lineage(ref)
    if as_json:
        print_json(lin)
        return
    console.print(_lineage_tree(lin))


def _pairs(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"invalid tag {item!r}: write KEY=VALUE")
        out[key] = value
    return out


@app.command()
def tag(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    tags: list[str] = typer.Argument(None, help="Tags to set, as KEY=VALUE."),
    delete: list[str] = typer.Option(None, "--delete", "-d", help="Tag key to delete."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Set (KEY=VALUE …) or delete (--delete KEY) tags of a version."""
    pairs = _pairs(tags or [])
    if not pairs and not delete:
        raise InvalidInput("nothing to do: give KEY=VALUE tags to set or --delete KEY")
    models = client_from(ctx).models
    v = models.set_version_tags(ref, pairs) if pairs else models.get_version(ref)
    for key in delete or []:
        v = models.delete_version_tag(v.ref, key)
    if as_json:
        print_json(v)
        return
    shown = ", ".join(f"{k}={x}" for k, x in sorted(v.tags.items())) or "(none)"
    console.print(f"{escape(v.ref)} tags: {escape(shown)}")
