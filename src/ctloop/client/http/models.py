"""``client.models`` over HTTP: the same methods, checks and errors as the local backend.

Names, aliases, references, tags and reasons are checked here with the local API's own
checks, so bad input fails before any request with the same message; the server checks
again. A version is registered from the server store's record of the run artifact: only
the run id and artifact path travel, never a digest, path or URL.

Alias moves are recorded with the server's user as their actor (the account
``ctloop server`` runs as), not this process's user, until the server authenticates its
callers.

:meth:`HttpModelsAPI.load` downloads the package named by the digest the server's registry
records (each file hashed while it arrives, the folder's listing verified against the
digest), then checks every file against the package manifest again before the flavor
deserialises anything.
"""

from __future__ import annotations

import builtins
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import TypeAdapter

from ctloop._internal.names import check_name, check_relative_path
from ctloop.client._http import HttpContext
from ctloop.client.models import Ref, _reason, _version_number
from ctloop.errors import InvalidInput, NotFound
from ctloop.registry.entities import AliasEvent, Lineage, ModelVersion, RegisteredModel
from ctloop.registry.refs import check_alias, parse_model_ref
from ctloop.tracking import validation as check

if TYPE_CHECKING:
    from ctloop.models.loading import LoadedModel
    from ctloop.tracking.entities import RunRecord
    from ctloop.tracking.run import Run

__all__ = ["HttpModelsAPI"]

_version = TypeAdapter(ModelVersion)
_versions = TypeAdapter(list[ModelVersion])
_model = TypeAdapter(RegisteredModel)
_models = TypeAdapter(list[RegisteredModel])
_events = TypeAdapter(list[AliasEvent])
_lineage = TypeAdapter(Lineage)


def _seg(value: str) -> str:
    """``value`` as one URL path segment (``.`` too, so httpx never drops a segment)."""
    return quote(value, safe="").replace(".", "%2E")


class HttpModelsAPI:
    """The model registry of a ctloop server (see :class:`ctloop.client.models.ModelsAPI`)."""

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    def _model_path(self, name: str, *rest: str) -> str:
        return "/".join(["/models", _seg(check_name(name, "model")), *rest])

    def _ref_text(self, ref: Ref) -> str:
        """A reference as the string the server parses (checked here first)."""
        if isinstance(ref, ModelVersion):
            return f"{ref.name}/{ref.version}"
        parsed = parse_model_ref(ref)  # a malformed reference fails here, before a request
        return ref if isinstance(ref, str) else str(parsed)

    def _version_path(self, ref: Ref, *rest: str) -> str:
        """``/models/NAME/versions/V…`` of the version ``ref`` names now.

        A reference by alias or to the latest version is resolved first (one request), so
        the operation applies to the version it named at that moment.
        """
        if isinstance(ref, ModelVersion):
            name, number = ref.name, ref.version
        else:
            parsed = parse_model_ref(ref)
            if parsed.version is not None and parsed.name is not None:
                name, number = parsed.name, parsed.version
            else:
                found = self.get_version(ref)
                name, number = found.name, found.version
        return self._model_path(name, "versions", str(number), *rest)

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

        See :meth:`ctloop.client.models.ModelsAPI.register`; the server reads the package
        from its own record of the run's artifact.
        """
        run = run_id if isinstance(run_id, str) else run_id.id
        check_name(name, "model")
        path = check_relative_path(artifact_path)
        clean_tags = {check.key(k, "tag"): check.tag_value(k, v) for k, v in (tags or {}).items()}
        body = {
            "run_id": run,
            "artifact_path": path,
            "description": description,
            "tags": clean_tags,
        }
        answer = self._ctx.request("POST", self._model_path(name, "versions"), json=body)
        return _version.validate_python(answer)

    # --- reading ------------------------------------------------------------------------

    def get_version(self, ref: Ref) -> ModelVersion:
        """The version named by ``NAME/V``, ``NAME@ALIAS``, ``NAME`` (latest) or ``(NAME, V)``."""
        answer = self._ctx.request("GET", "/models/resolve", params={"ref": self._ref_text(ref)})
        return _version.validate_python(answer)

    def resolve(self, ref: Ref) -> ModelVersion:
        """What a reference names now (aliases move: resolve again to follow them)."""
        return self.get_version(ref)

    def get(self, name: str) -> RegisteredModel:
        """Model ``name``: latest version, number of versions, aliases."""
        return _model.validate_python(self._ctx.request("GET", self._model_path(name)))

    def list(self) -> builtins.list[RegisteredModel]:
        """Every registered model, by name, with its latest version and aliases."""
        return _models.validate_python(self._ctx.request("GET", "/models"))

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        """Every version of model ``name``, oldest first."""
        return _versions.validate_python(
            self._ctx.request("GET", self._model_path(name, "versions"))
        )

    def set_description(self, name: str, description: str | None) -> RegisteredModel:
        """Replace the description of model ``name``."""
        path = self._model_path(name, "description")
        answer = self._ctx.request("PUT", path, json={"description": description})
        return _model.validate_python(answer)

    # --- aliases ------------------------------------------------------------------------

    def _alias_path(self, name: str, alias: str, *rest: str) -> str:
        return self._model_path(name, "aliases", _seg(check_alias(alias)), *rest)

    def set_alias(
        self, name: str, alias: str, version: int, reason: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` of model ``name`` at ``version`` and record the move.

        See :meth:`ctloop.client.models.ModelsAPI.set_alias`; the server's user is the
        move's actor.
        """
        path = self._alias_path(name, alias)
        body = {"version": _version_number(version), "reason": _reason(reason)}
        return _version.validate_python(self._ctx.request("PUT", path, json=body))

    def delete_alias(self, name: str, alias: str, reason: str | None = None) -> None:
        """Remove ``alias`` of model ``name`` and record it (the history stays)."""
        path = self._alias_path(name, alias)
        self._ctx.request("DELETE", path, json={"reason": _reason(reason)})

    def rollback(
        self, name: str, alias: str = "champion", reason: str | None = None
    ) -> ModelVersion:
        """Undo the newest move of ``alias`` that is not undone yet, and record it.

        See :meth:`ctloop.client.models.ModelsAPI.rollback`.
        """
        path = self._alias_path(name, alias, "rollback")
        answer = self._ctx.request("POST", path, json={"reason": _reason(reason)})
        return _version.validate_python(answer)

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Every move of the aliases of model ``name`` (or of one alias), oldest first."""
        params = {} if alias is None else {"alias": alias}
        path = self._model_path(name, "alias-events")
        return _events.validate_python(self._ctx.request("GET", path, params=params))

    # --- version tags -------------------------------------------------------------------

    def set_version_tags(self, ref: Ref, tags: Mapping[str, Any]) -> ModelVersion:
        """Set tags on a version (tags may change; the version's package never does)."""
        clean = {check.key(k, "tag"): check.tag_value(k, v) for k, v in tags.items()}
        path = self._version_path(ref, "tags")
        return _version.validate_python(self._ctx.request("PATCH", path, json={"tags": clean}))

    def set_version_tag(self, ref: Ref, key: str, value: Any) -> ModelVersion:
        """Set one tag on a version."""
        return self.set_version_tags(ref, {key: value})

    def delete_version_tag(self, ref: Ref, key: str) -> ModelVersion:
        """Delete one tag of a version (NotFound when it has no such tag)."""
        if not key:  # no URL names an empty key; the answer is the local one
            ref_text = self.get_version(ref).ref
            raise NotFound(
                f"model version {ref_text} has no tag {key!r}; see its tags with: "
                f"ctloop models show {ref_text}"
            )
        path = self._version_path(ref, "tags", _seg(key))
        return _version.validate_python(self._ctx.request("DELETE", path))

    # --- lineage and loading ------------------------------------------------------------

    def lineage(self, ref: Ref) -> Lineage:
        """Where a version came from: its run, the run's input datasets, code, package."""
        return _lineage.validate_python(
            self._ctx.request("GET", self._version_path(ref, "lineage"))
        )

    def package_digest(self, ref: Ref) -> str:
        """The digest of the package a reference names (``runs:/RUN_ID/PATH`` included),
        as the server's store records it."""
        if isinstance(ref, str) and parse_model_ref(ref).run_id is not None:
            answer = self._ctx.request("GET", "/models/package-digest", params={"ref": ref})
            return str(answer["package_digest"])
        return self.get_version(ref).package_digest

    def load(self, ref: Ref, trust: bool = False) -> LoadedModel:
        """Load the model a reference names (``churn@champion``, ``churn/3``, ``runs:/…``).

        The package is downloaded by the digest the server's registry records and
        verified while it arrives; every file is checked against the package manifest
        again before anything is deserialised. ``trust=True`` is needed for flavors that
        execute code when loaded (``python``).
        """
        from ctloop.client import _transfer
        from ctloop.models.loading import load_package_dir
        from ctloop.models.package import MANIFEST_FILE, ModelManifest

        digest = self.package_digest(ref)
        with tempfile.TemporaryDirectory(prefix="ctloop-model-") as tmp:
            folder = _transfer.download(self._ctx, digest, "dir", Path(tmp) / "package")
            manifest_file = folder / MANIFEST_FILE
            if not manifest_file.is_file():
                raise InvalidInput(
                    f"object {digest} is not a model package: it has no {MANIFEST_FILE}"
                )
            manifest = ModelManifest.from_json(manifest_file.read_bytes())
            return load_package_dir(folder, manifest, trust=trust, digest=digest)
