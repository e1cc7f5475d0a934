"""``client.models``: the model registry — versions, aliases and their history, lineage.

A version's package is always a run artifact already in the artifact store, found through
the store's own record of that artifact; no caller-supplied path, URL or digest is ever
read. Alias moves are events (who, when, from, to, why) that are kept forever.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctloop._internal.environment import current_user
from ctloop._internal.ids import ms_to_datetime, now_ms
from ctloop._internal.names import check_name, check_relative_path
from ctloop.errors import Conflict, IntegrityError, InvalidInput, NotFound
from ctloop.registry.aliases import DELETE, ROLLBACK, SET, undoable_move
from ctloop.registry.entities import (
    AliasEvent,
    CodeVersion,
    Lineage,
    LineageRun,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from ctloop.registry.refs import ModelRef, check_alias, parse_model_ref
from ctloop.store import models as store
from ctloop.store import runs as runs_store
from ctloop.tracking import validation as check
from ctloop.tracking.entities import RunRecord

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ctloop.client._local import LocalContext
    from ctloop.models.loading import LoadedModel
    from ctloop.models.package import ModelManifest
    from ctloop.tracking.run import Run

__all__ = ["ModelsAPI"]

MAX_REASON = 8000
Ref = str | tuple[str, int] | ModelRef | ModelVersion


def _time(ms: int) -> Any:
    when = ms_to_datetime(ms)
    assert when is not None
    return when


def version_from_row(row: dict[str, Any]) -> ModelVersion:
    """A :class:`ModelVersion` from a hydrated row of ``store.models``."""
    return ModelVersion(
        id=row["id"],
        name=row["name"],
        version=int(row["version"]),
        run_id=row["run_id"],
        artifact_path=row["artifact_path"],
        package_digest=row["package_digest"],
        flavor=row["flavor"],
        status=ModelVersionStatus(row["status"]),
        created_at=_time(row["created_at"]),
        created_by=row["created_by"],
        description=row["description"],
        signature=row["signature"],
        metrics=dict(row.get("metrics") or {}),
        tags=dict(row.get("tags") or {}),
        aliases=list(row.get("aliases") or []),
    )


def _model(row: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        id=row["id"],
        name=row["name"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        description=row["description"],
        latest_version=None if row["latest_version"] is None else int(row["latest_version"]),
        version_count=int(row["version_count"] or 0),
        aliases=dict(row.get("aliases") or {}),
    )


def _event(row: dict[str, Any]) -> AliasEvent:
    return AliasEvent(
        id=int(row["id"]),
        name=row["name"],
        alias=row["alias"],
        action=row["action"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        actor=row["actor"],
        created_at=_time(row["created_at"]),
        reason=row["reason"],
    )


def _reason(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"invalid reason {value!r}: it must be text")
    text = value.strip()
    if len(text) > MAX_REASON:
        raise InvalidInput(f"the reason is {len(text)} characters long; the limit is {MAX_REASON}")
    return text or None


def _version_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"invalid model version {value!r}: use a whole number from 1")
    return value


class ModelsAPI:
    """The model registry of one store. Reached as ``client.models``."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

    # --- registering --------------------------------------------------------------------

    def register(
        self,
        run_id: str | RunRecord | Run,
        artifact_path: str = "model",
        *,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register a model package logged by a run as the next version of model ``name``.

        The package is the run's artifact ``artifact_path`` as the store recorded it (by
        digest); its manifest must read and verify. The model is created on its first
        version. The new version snapshots the run's latest metrics.

        Raises:
            NotFound: for an unknown run, or a run without that artifact.
            InvalidInput: for a bad name, or an artifact that is not a model package.
            IntegrityError: when the package's stored bytes fail their digests.
        """
        run = run_id if isinstance(run_id, str) else run_id.id
        check_name(name, "model")
        path = check_relative_path(artifact_path)
        clean_tags = {check.key(k, "tag"): check.tag_value(k, v) for k, v in (tags or {}).items()}
        with self._ctx.db.read() as conn:
            runs_store.get_row(conn, run)
            artifact = runs_store.get_artifact(conn, run, path)
        what = f"artifact '{path}' of run {run}"
        if artifact["kind"] != "dir":
            raise InvalidInput(
                f"{what} is a single file, not a model package (a folder with "
                "ctloop-model.json); log models with: run.log_model(model)"
            )
        manifest = self._read_manifest(artifact["digest"], what)
        with self._ctx.db.write() as conn:
            now_row = runs_store.get_artifact(conn, run, path)
            if now_row["digest"] != artifact["digest"]:
                raise Conflict(
                    f"{what} was replaced while it was being registered; register it again"
                )
            row = store.add_version(
                conn,
                name=name,
                run_id=run,
                artifact_path=path,
                package_digest=artifact["digest"],
                flavor=manifest.flavor,
                signature=manifest.signature,
                metrics=store.run_metrics(conn, run),
                status=ModelVersionStatus.READY.value,
                created_by=current_user(),
                now=now_ms(),
                description=description,
                tags=clean_tags,
            )
        return version_from_row(row)

    def _read_manifest(self, digest: str, what: str) -> ModelManifest:
        from ctloop.models.package import read_manifest

        try:
            return read_manifest(self._ctx.blobs, digest)
        except IntegrityError as exc:
            raise IntegrityError(f"{what} is corrupted: {exc}") from exc
        except (NotFound, InvalidInput) as exc:
            raise InvalidInput(
                f"{what} is not a valid ctloop model package: {exc}; "
                "log models with: run.log_model(model)"
            ) from exc

    # --- reading ------------------------------------------------------------------------

    def _row(self, conn: Connection, ref: Ref) -> dict[str, Any]:
        if isinstance(ref, ModelVersion):
            return store.get_version(conn, ref.name, ref.version)
        parsed = parse_model_ref(ref)
        if parsed.run_id is not None:
            raise InvalidInput(
                f"{str(parsed)!r} names a run's package, not a registered version; register "
                f"it with: ctloop.register_model('{parsed.run_id}', '{parsed.artifact_path}', "
                "name=NAME), or name a version as NAME/VERSION or NAME@ALIAS"
            )
        assert parsed.name is not None
        if parsed.alias is not None:
            return store.get_version_by_alias(conn, parsed.name, parsed.alias)
        return store.get_version(conn, parsed.name, parsed.version)

    def get_version(self, ref: Ref) -> ModelVersion:
        """The version named by ``NAME/V``, ``NAME@ALIAS``, ``NAME`` (latest) or ``(NAME, V)``.

        Raises:
            InvalidInput: for a malformed reference.
            NotFound: for an unknown model, version or alias.
        """
        with self._ctx.db.read() as conn:
            return version_from_row(self._row(conn, ref))

    def resolve(self, ref: Ref) -> ModelVersion:
        """What a reference names now (aliases move: resolve again to follow them)."""
        return self.get_version(ref)

    def get(self, name: str) -> RegisteredModel:
        """Model ``name``: latest version, number of versions, aliases."""
        check_name(name, "model")
        with self._ctx.db.read() as conn:
            return _model(store.get_model(conn, name))

    def list(self) -> list[RegisteredModel]:
        """Every registered model, by name, with its latest version and aliases."""
        with self._ctx.db.read() as conn:
            return [_model(r) for r in store.list_models(conn)]

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        """Every version of model ``name``, oldest first."""
        check_name(name, "model")
        with self._ctx.db.read() as conn:
            return [version_from_row(r) for r in store.list_versions(conn, name)]

    def set_description(self, name: str, description: str | None) -> RegisteredModel:
        """Replace the description of model ``name``."""
        check_name(name, "model")
        with self._ctx.db.write() as conn:
            store.set_description(conn, name, description, now_ms())
        return self.get(name)

    # --- aliases ------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, reason: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` of model ``name`` at ``version`` and record the move.

        Setting an alias to the version it already names changes nothing and records
        nothing. ``latest`` is reserved and cannot be set.

        Raises:
            InvalidInput: for a bad or reserved alias, or a bad version number.
            NotFound: for an unknown model or version.
        """
        check_name(name, "model")
        check_alias(alias)
        number = _version_number(version)
        why = _reason(reason)
        with self._ctx.db.write() as conn:
            now = now_ms()
            model = store.lock_model(conn, name, now=now)
            target = store.get_version(conn, name, number)
            current = store.alias_target(conn, model["id"], alias)
            if current != number:
                store.move_alias(
                    conn,
                    model_id=model["id"],
                    alias=alias,
                    action=SET,
                    from_version=current,
                    to_version=number,
                    version_id=target["id"],
                    reason=why,
                    actor=current_user(),
                    now=now,
                )
        return self.get_version((name, number))

    def delete_alias(self, name: str, alias: str, reason: str | None = None) -> None:
        """Remove ``alias`` from model ``name`` and record it (the history stays).

        Raises:
            NotFound: for an unknown model, or an alias it does not have.
        """
        check_name(name, "model")
        check_alias(alias)
        why = _reason(reason)
        with self._ctx.db.write() as conn:
            now = now_ms()
            model = store.lock_model(conn, name, now=now)
            current = store.alias_target(conn, model["id"], alias)
            if current is None:
                raise store.unknown_alias(conn, name, alias)
            store.move_alias(
                conn,
                model_id=model["id"],
                alias=alias,
                action=DELETE,
                from_version=current,
                to_version=None,
                version_id=None,
                reason=why,
                actor=current_user(),
                now=now,
            )

    def rollback(
        self, name: str, alias: str = "champion", reason: str | None = None
    ) -> ModelVersion:
        """Undo the newest move of ``alias`` that is not undone yet, and record it.

        The alias goes back to the version that move replaced. Rollbacks form an undo
        stack: a second rollback walks further back, it does not undo the first (see
        ``ctloop.registry.aliases``). A rolled-back delete restores the alias.

        Raises:
            NotFound: for an unknown model, or an alias that was never set.
            Conflict: when there is no earlier version to go back to.
        """
        check_name(name, "model")
        check_alias(alias)
        why = _reason(reason)
        with self._ctx.db.write() as conn:
            now = now_ms()
            model = store.lock_model(conn, name, now=now)
            events = [_event(r) for r in store.list_events(conn, model["id"], alias)]
            if not events:
                raise store.unknown_alias(conn, name, alias)
            move = undoable_move(name, alias, events)
            assert move.from_version is not None
            target = store.get_version(conn, name, move.from_version)
            current = store.alias_target(conn, model["id"], alias)
            store.move_alias(
                conn,
                model_id=model["id"],
                alias=alias,
                action=ROLLBACK,
                from_version=current,
                to_version=move.from_version,
                version_id=target["id"],
                reason=why,
                actor=current_user(),
                now=now,
            )
        return self.get_version((name, move.from_version))

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Every move of the aliases of model ``name`` (or of one alias), oldest first."""
        check_name(name, "model")
        with self._ctx.db.read() as conn:
            model = store.get_model(conn, name)
            return [_event(r) for r in store.list_events(conn, model["id"], alias)]

    # --- version tags -------------------------------------------------------------------

    def set_version_tags(self, ref: Ref, tags: Mapping[str, Any]) -> ModelVersion:
        """Set tags on a version (tags may change; the version's package never does)."""
        clean = {check.key(k, "tag"): check.tag_value(k, v) for k, v in tags.items()}
        with self._ctx.db.write() as conn:
            row = self._row(conn, ref)
            store.set_version_tags(conn, row["id"], clean)
            return version_from_row(store.get_version(conn, row["name"], row["version"]))

    def set_version_tag(self, ref: Ref, key: str, value: Any) -> ModelVersion:
        """Set one tag on a version."""
        return self.set_version_tags(ref, {key: value})

    def delete_version_tag(self, ref: Ref, key: str) -> ModelVersion:
        """Delete one tag of a version.

        Raises:
            NotFound: when the version has no such tag.
        """
        with self._ctx.db.write() as conn:
            row = self._row(conn, ref)
            if not store.delete_version_tag(conn, row["id"], key):
                ref_text = f"{row['name']}/{row['version']}"
                raise NotFound(
                    f"model version {ref_text} has no tag {key!r}; see its tags with: "
                    f"ctloop models show {ref_text}"
                )
            return version_from_row(store.get_version(conn, row["name"], row["version"]))

    # --- lineage and loading ------------------------------------------------------------

    def lineage(self, ref: Ref) -> Lineage:
        """Where a version came from: its run, the run's input datasets, code, package."""
        from ctloop.client.runs import run_from_row

        with self._ctx.db.read() as conn:
            version = version_from_row(self._row(conn, ref))
            run = run_from_row(runs_store.get(conn, version.run_id))
        src = run.source
        code = None
        if src.get("git_commit"):
            code = CodeVersion(
                git_commit=src.get("git_commit"),
                git_dirty=src.get("git_dirty"),
                git_branch=src.get("git_branch"),
                git_diff_sha256=src.get("git_diff_sha256"),
            )
        return Lineage(
            version=version,
            run=LineageRun(
                id=run.id,
                name=run.name,
                experiment=run.experiment,
                status=run.status.value,
                user=run.user,
                start_time=run.start_time,
                end_time=run.end_time,
                params=run.params,
                metrics=run.metrics,
            ),
            inputs=run.inputs,
            code=code,
            package_digest=version.package_digest,
            flavor=version.flavor,
        )

    def package_digest(self, ref: Ref) -> str:
        """The digest of the package a reference names (``runs:/RUN_ID/PATH`` included)."""
        if isinstance(ref, str):
            parsed = parse_model_ref(ref)
            if parsed.run_id is not None:
                assert parsed.artifact_path is not None
                with self._ctx.db.read() as conn:
                    runs_store.get_row(conn, parsed.run_id)
                    artifact = runs_store.get_artifact(conn, parsed.run_id, parsed.artifact_path)
                if artifact["kind"] != "dir":
                    raise InvalidInput(
                        f"artifact '{parsed.artifact_path}' of run {parsed.run_id} is a single "
                        "file, not a model package; log models with: run.log_model(model)"
                    )
                return str(artifact["digest"])
        return self.get_version(ref).package_digest

    def load(self, ref: Ref, trust: bool = False) -> LoadedModel:
        """Load the model a reference names (``churn@champion``, ``churn/3``, ``runs:/…``).

        The package is read by digest from the artifact store and verified. ``trust=True``
        is needed for flavors that execute code when loaded (``python``).
        """
        from ctloop.models.loading import load_package

        return load_package(self._ctx.blobs, self.package_digest(ref), trust=trust)
