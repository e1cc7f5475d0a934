"""``client.datasets`` over HTTP: the data travels by the objects protocol, facts by REST.

``add`` hashes here (unchanged files are a stat), sends only the objects the server lacks,
profiles here only when the content differs from the server's latest version, and writes
the pointer file here, beside the data.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import TypeAdapter

from ctloop._internal.environment import current_user
from ctloop._internal.names import check_name
from ctloop.client import _transfer
from ctloop.client._http import HttpContext
from ctloop.client.datasets import suite_yaml, version_not_in_store
from ctloop.data.entities import Dataset, DatasetVersion
from ctloop.data.refs import parse_ref
from ctloop.errors import IntegrityError, InvalidInput, NotFound
from ctloop.validation.records import SuiteRecord

if TYPE_CHECKING:
    from ctloop.data.diff import DatasetDiff
    from ctloop.validation import Suite

__all__ = ["HttpDatasetsAPI"]

Progress = Callable[[int], None]

_version = TypeAdapter(DatasetVersion)
_versions = TypeAdapter(list[DatasetVersion])
_dataset = TypeAdapter(Dataset)
_datasets = TypeAdapter(list[Dataset])
_suite_record = TypeAdapter(SuiteRecord)
_suite_records = TypeAdapter(list[SuiteRecord])


def _path(name: str) -> str:
    return f"/datasets/{quote(name, safe='')}"


class HttpDatasetsAPI:
    """Versioned datasets of a ctloop server; the same methods as the local DatasetsAPI."""

    def __init__(self, ctx: HttpContext) -> None:
        self._ctx = ctx

    def add(
        self,
        path: str | os.PathLike[str],
        name: str,
        description: str | None = None,
        pointer: bool = True,
        progress: Progress | None = None,
    ) -> DatasetVersion:
        """Upload a file or folder as the next version of dataset ``name`` (if it changed).

        See :meth:`ctloop.client.datasets.DatasetsAPI.add`; ``progress`` counts bytes sent
        or found already on the server.
        """
        from ctloop.data.pointer import pointer_path, write_pointer
        from ctloop.data.profile import detect_format, profile_data

        check_name(name, "dataset")
        source = Path(path)
        if not source.exists():
            raise NotFound(f"no such file or folder: {str(path)!r}")
        if pointer:
            pointer_path(source)  # fail before sending anything if it cannot be placed
        sent = _transfer.upload(self._ctx, source, progress=progress)
        latest = self._latest(name)
        body: dict[str, Any] = {
            "digest": sent.digest,
            "kind": sent.kind,
            "source_path": os.path.abspath(source),
            "description": description,
            "created_by": current_user(),
        }
        if latest is None or (latest.digest, latest.kind) != (sent.digest, sent.kind):
            fmt = detect_format(source)
            body["format"] = fmt
            if fmt is not None:
                table = profile_data(source, fmt)
                body.update(row_count=table.row_count, schema=table.schema, profile=table.profile)
        version = _version.validate_python(
            self._ctx.request("POST", f"{_path(name)}/versions", json=body)
        )
        if pointer:
            write_pointer(source, version)
        return version

    def add_stored(
        self,
        name: str,
        digest: str,
        kind: str,
        *,
        format: str | None = None,  # noqa: A002 - the DatasetVersion field it fills
        row_count: int | None = None,
        schema: builtins.list[dict[str, Any]] | None = None,
        profile: dict[str, Any] | None = None,
        source_path: str | None = None,
        description: str | None = None,
        created_by: str | None = None,
    ) -> DatasetVersion:
        """Make an object already on the server the next version of ``name``."""
        check_name(name, "dataset")
        body = {
            "digest": digest,
            "kind": kind,
            "format": format,
            "row_count": row_count,
            "schema": schema,
            "profile": profile,
            "source_path": source_path,
            "description": description,
            "created_by": created_by if created_by is not None else current_user(),
        }
        answer = self._ctx.request("POST", f"{_path(name)}/versions", json=body)
        return _version.validate_python(answer)

    def _latest(self, name: str) -> DatasetVersion | None:
        try:
            return self.get(name)
        except NotFound:
            return None

    def get(self, ref: str) -> DatasetVersion:
        """The version named by ``NAME``, ``NAME@latest`` or ``NAME@3``."""
        parsed = parse_ref(ref)
        number = "latest" if parsed.version is None else str(parsed.version)
        answer = self._ctx.request("GET", f"{_path(parsed.name)}/versions/{number}")
        return _version.validate_python(answer)

    def get_by_id(self, version_id: str) -> DatasetVersion:
        """The version whose ``id`` this is."""
        answer = self._ctx.request("GET", f"/dataset-versions/{quote(version_id, safe='')}")
        return _version.validate_python(answer)

    def resolve(self, ref: str | DatasetVersion) -> DatasetVersion:
        """A reference or a :class:`DatasetVersion` as the version stored on the server."""
        if isinstance(ref, DatasetVersion):
            try:
                return self.get_by_id(ref.id)
            except NotFound:
                raise version_not_in_store(ref) from None
        if isinstance(ref, str):
            return self.get(ref)
        raise InvalidInput(
            f"invalid dataset reference {ref!r}: pass 'NAME', 'NAME@VERSION' or a DatasetVersion"
        )

    def info(self, name: str) -> Dataset:
        """The dataset ``name``: description, latest version, number of versions."""
        check_name(name, "dataset")
        return _dataset.validate_python(self._ctx.request("GET", _path(name)))

    def list(self) -> builtins.list[Dataset]:
        """Every dataset, by name."""
        return _datasets.validate_python(self._ctx.request("GET", "/datasets"))

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every version of ``name``, oldest first."""
        check_name(name, "dataset")
        answer = self._ctx.request("GET", f"{_path(name)}/versions")
        return _versions.validate_python(answer)

    def download(
        self,
        ref: str | DatasetVersion,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> Path:
        """Write the data of a version to ``dest``, verified against its digest.

        See :meth:`ctloop.client.datasets.DatasetsAPI.download`: a file version given an
        existing folder lands inside it; a new folder appears only once whole.
        """
        version = self.resolve(ref)
        out = Path(dest)
        if version.kind == "file":
            if out.is_dir():
                out = out / Path(version.source_path or version.name).name
            return _transfer.download(self._ctx, version.digest, "file", out, progress)
        if out.exists():
            if not out.is_dir():
                raise InvalidInput(
                    f"cannot write folder {version.ref} to {str(dest)!r}: it is a file"
                )
            return _transfer.download(self._ctx, version.digest, "dir", out, progress)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            _transfer.download(self._ctx, version.digest, "dir", tmp, progress)
            os.replace(tmp, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(tmp)
        return out

    def diff(self, a: str | DatasetVersion, b: str | DatasetVersion) -> DatasetDiff:
        """What changed from version ``a`` to version ``b``: content, schema, profile."""
        from ctloop.data.diff import diff_versions

        return diff_versions(self.resolve(a), self.resolve(b))

    # --- validation suites ---------------------------------------------------------------

    def _suites_path(self, ref: str | DatasetVersion) -> str:
        """``/datasets/{name}/versions/{n|latest}/suites`` of a reference or version."""
        if isinstance(ref, DatasetVersion):
            version = self.resolve(ref)  # it must be this server's
            return f"{_path(version.name)}/versions/{version.version}/suites"
        parsed = parse_ref(ref)
        number = "latest" if parsed.version is None else str(parsed.version)
        return f"{_path(parsed.name)}/versions/{number}/suites"

    def attach_suite(
        self,
        ref: str | DatasetVersion,
        suite: Suite,
        name: str = "default",
        *,
        created_by: str | None = None,
    ) -> SuiteRecord:
        """Store ``suite`` on the server and attach it to a dataset version under ``name``.

        See :meth:`ctloop.client.datasets.DatasetsAPI.attach_suite`.
        """
        check_name(name, "suite")
        body = {
            "yaml": suite_yaml(suite).decode("utf-8"),
            "created_by": created_by if created_by is not None else current_user(),
        }
        path = f"{self._suites_path(ref)}/{quote(name, safe='')}"
        return _suite_record.validate_python(self._ctx.request("PUT", path, json=body))

    def suites(self, ref: str | DatasetVersion) -> builtins.list[SuiteRecord]:
        """The validation suites attached to a dataset version, by name."""
        return _suite_records.validate_python(self._ctx.request("GET", self._suites_path(ref)))

    def get_suite(self, ref: str | DatasetVersion, name: str = "default") -> Suite:
        """The validation suite attached to a dataset version under ``name``.

        See :meth:`ctloop.client.datasets.DatasetsAPI.get_suite`; the YAML is checked
        against the digest the server recorded.
        """
        from ctloop.validation.suite import Suite

        check_name(name, "suite")
        path = f"{self._suites_path(ref)}/{quote(name, safe='')}"
        answer = self._ctx.request("GET", path)
        record = _suite_record.validate_python(answer)
        text = str(answer["yaml"])
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != record.digest:
            raise IntegrityError(
                f"suite '{name}' of {record.dataset} from the ctloop server at {self._ctx.url} "
                f"does not match its sha256 {record.digest}; the server's copy is corrupted"
            )
        return Suite.from_yaml(text, source=f"suite '{name}' of {record.dataset}")
