"""``client.datasets``: add, find, download and compare versioned datasets."""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.environment import current_user
from ctloop._internal.ids import ms_to_datetime
from ctloop._internal.names import check_name
from ctloop.data.entities import Dataset, DatasetVersion
from ctloop.data.refs import parse_ref
from ctloop.errors import Conflict, InvalidInput, NotFound, StoreError
from ctloop.store import dataset_suites
from ctloop.store import datasets as store

if TYPE_CHECKING:
    from ctloop.artifacts import StoredObject
    from ctloop.client._local import LocalContext
    from ctloop.data.diff import DatasetDiff
    from ctloop.validation import Suite, SuiteRecord

__all__ = ["DatasetsAPI", "no_such_suite", "version_not_in_store"]

Progress = Callable[[int], None]


def _dataset(row: dict[str, Any]) -> Dataset:
    created = ms_to_datetime(row["created_at"])
    assert created is not None
    return Dataset(
        id=row["id"],
        name=row["name"],
        created_at=created,
        description=row["description"],
        latest_version=row["latest_version"],
        version_count=int(row["version_count"] or 0),
        updated_at=ms_to_datetime(row["updated_at"]),
    )


def _version(row: dict[str, Any], *, is_new: bool = False) -> DatasetVersion:
    created = ms_to_datetime(row["created_at"])
    assert created is not None
    return DatasetVersion(
        id=row["id"],
        name=row["name"],
        version=int(row["version"]),
        digest=row["digest"],
        kind=row["kind"],
        size=int(row["size"]),
        file_count=int(row["file_count"]),
        created_at=created,
        format=row["format"],
        source_path=row["source_path"],
        row_count=None if row["row_count"] is None else int(row["row_count"]),
        schema=row["schema"],
        profile=row["profile"],
        created_by=row["created_by"],
        is_new=is_new,
    )


def version_not_in_store(version: DatasetVersion) -> NotFound:
    """The error for a :class:`DatasetVersion` (from another store?) that this one lacks."""
    return NotFound(
        f"dataset version {version.ref} (id {version.id}) is not in this store; "
        f"list versions with: ctloop data show {version.name}"
    )


def no_such_suite(version: DatasetVersion, name: str, attached: list[str]) -> NotFound:
    """The error for a suite name that is not attached to ``version``."""
    others = f" (it has {', '.join(repr(a) for a in attached)})" if attached else ""
    how = f"ctloop data suite {version.ref} --attach" + (
        "" if name == "default" else f" --name {name}"
    )
    return NotFound(
        f"dataset version {version.ref} has no validation suite named '{name}'{others}; "
        f"infer and attach one with: {how}"
    )


def suite_record(row: dict[str, Any], version: DatasetVersion) -> SuiteRecord:
    """A stored suite link as the :class:`~ctloop.validation.SuiteRecord` users see."""
    from ctloop.validation.records import SuiteRecord

    created = ms_to_datetime(row["created_at"])
    assert created is not None
    return SuiteRecord(
        dataset=version.ref,
        dataset_version_id=version.id,
        name=row["name"],
        digest=row["digest"],
        created_at=created,
        created_by=row["created_by"],
    )


def suite_yaml(suite: Suite) -> bytes:
    """The bytes stored for ``suite``: its YAML (as read, when it was read from a file)."""
    from ctloop.validation.suite import Suite

    if not isinstance(suite, Suite):
        raise InvalidInput(
            f"attach_suite needs a ctloop.validation.Suite, got {type(suite).__name__}; "
            "read one with ctloop.validation.load(path) or make one with infer_suite"
        )
    return suite.to_yaml().encode("utf-8")


class DatasetsAPI:
    """Versioned datasets of one store. Reached as ``client.datasets``."""

    def __init__(self, ctx: LocalContext) -> None:
        self._ctx = ctx

    def add(
        self,
        path: str | os.PathLike[str],
        name: str,
        description: str | None = None,
        pointer: bool = True,
        progress: Progress | None = None,
    ) -> DatasetVersion:
        """Store a file or folder as the next version of dataset ``name``.

        A version is created only when the content differs from the latest version;
        otherwise the latest version is returned (``is_new`` False) and nothing is hashed
        or profiled again. CSV and Parquet data is profiled once, when its version is made.

        Args:
            path: a file, or a folder (stored with every file under it).
            name: the dataset's name; it is created on its first add.
            description: describes the dataset (replaces the previous description).
            pointer: write ``PATH.ctloop.yaml`` beside the data for git to track.
            progress: called with the number of bytes processed, as they are.

        Raises:
            NotFound: when ``path`` does not exist.
            InvalidInput: for a bad name or a path that is neither file nor folder.
        """
        from ctloop.data.pointer import pointer_path, write_pointer
        from ctloop.data.profile import detect_format, profile_data

        check_name(name, "dataset")
        source = Path(path)
        if not source.exists():
            raise NotFound(f"no such file or folder: {str(path)!r}")
        if pointer:
            pointer_path(source)  # fail before storing anything if it cannot be placed
        stored = self._ctx.blobs.put(source, progress=progress)

        def profile(fmt: str) -> dict[str, Any]:
            table = profile_data(source, fmt)
            return {"row_count": table.row_count, "schema": table.schema, "profile": table.profile}

        version = self._add_version(
            name,
            stored,
            description=description,
            source_path=os.path.abspath(source),
            created_by=current_user(),
            format_of=lambda: detect_format(source),
            profile=profile,
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
        """Make an object already in the artifact store the next version of ``name``.

        This is :meth:`add` after the storing, for data that reached the store another way
        (an upload to ``ctloop server``). As in :meth:`add`, an unchanged latest version is
        returned as it is. Size and file count are read from the store; format and
        statistics come from the caller, who has the data (a profile stored before for
        the same content and format is preferred).

        Raises:
            InvalidInput: a bad name, digest, kind or format.
            Conflict: the artifact store holds no such object.
        """
        check_name(name, "dataset")
        if format not in (None, "csv", "parquet"):
            raise InvalidInput(f"invalid dataset format {format!r}: use 'csv', 'parquet' or None")
        try:
            stored = self._ctx.blobs.stat(digest, kind)
        except NotFound:
            raise Conflict(
                f"the artifact store holds no {kind} object {digest}; store or upload it "
                f"before adding it as a version of dataset '{name}'"
            ) from None
        given: dict[str, Any] | None = None
        if row_count is not None or schema is not None or profile is not None:
            given = {"row_count": row_count, "schema": schema, "profile": profile}
        return self._add_version(
            name,
            stored,
            description=description,
            source_path=source_path,
            created_by=created_by if created_by is not None else current_user(),
            format_of=lambda: format,
            profile=lambda _fmt: given,
        )

    def _add_version(
        self,
        name: str,
        stored: StoredObject,
        *,
        description: str | None,
        source_path: str | None,
        created_by: str | None,
        format_of: Callable[[], str | None],
        profile: Callable[[str], dict[str, Any] | None],
    ) -> DatasetVersion:
        """The next version of ``name`` holding ``stored``, or the latest if it holds it.

        ``format_of`` and ``profile`` run only when a version is made, and ``profile`` only
        when no profile of the same content and format is stored already.
        """
        with self._ctx.db.read() as conn:
            latest = store.latest_version(conn, name)
        if latest is not None and (latest["digest"], latest["kind"]) == (
            stored.digest,
            stored.kind,
        ):
            # Unchanged: no profiling, no write (descriptions still update).
            if description is not None:
                with self._ctx.db.write() as conn:
                    store.set_description(conn, name, description)
            return _version(latest)
        fmt = format_of()
        stats: dict[str, Any] = {"row_count": None, "schema": None, "profile": None}
        if fmt is not None:
            with self._ctx.db.read() as conn:
                # the same bytes were profiled before (e.g. a revert)
                known = store.find_profile(conn, stored.digest, stored.kind, fmt)
            measured = known if known is not None else profile(fmt)
            if measured is not None:
                stats = measured
        with self._ctx.db.write() as conn:
            row, created = store.add_version(
                conn,
                name=name,
                digest=stored.digest,
                kind=stored.kind,
                size=stored.size,
                file_count=stored.file_count,
                description=description,
                format=fmt,
                source_path=source_path,
                created_by=created_by,
                **stats,
            )
        return _version(row, is_new=created)

    def get(self, ref: str) -> DatasetVersion:
        """The version named by ``NAME``, ``NAME@latest`` or ``NAME@3``.

        Raises:
            InvalidInput: for a malformed reference.
            NotFound: for an unknown dataset or version.
        """
        parsed = parse_ref(ref)
        with self._ctx.db.read() as conn:
            return _version(store.get_version(conn, parsed.name, parsed.version))

    def resolve(self, ref: str | DatasetVersion) -> DatasetVersion:
        """A reference or a :class:`DatasetVersion` as the version stored in this store."""
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

    def get_by_id(self, version_id: str) -> DatasetVersion:
        """The version whose ``id`` this is.

        Raises:
            NotFound: no version of any dataset has this id here.
        """
        with self._ctx.db.read() as conn:
            row = store.get_version_by_id(conn, version_id)
        if row is None:
            raise NotFound(f"no dataset version has the id {version_id!r} in this store")
        return _version(row)

    def info(self, name: str) -> Dataset:
        """The dataset ``name``: description, latest version, number of versions."""
        check_name(name, "dataset")
        with self._ctx.db.read() as conn:
            return _dataset(store.get_dataset(conn, name))

    def list(self) -> list[Dataset]:
        """Every dataset, by name."""
        with self._ctx.db.read() as conn:
            return [_dataset(r) for r in store.list_datasets(conn)]

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every version of ``name``, oldest first."""
        check_name(name, "dataset")
        with self._ctx.db.read() as conn:
            return [_version(r) for r in store.list_versions(conn, name)]

    def download(
        self,
        ref: str | DatasetVersion,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> Path:
        """Write the data of a version to ``dest``, verified against its digest.

        A file version given an existing folder lands inside it under its source name.
        A folder version goes to ``dest`` (created; when it did not exist it appears
        only once whole). A corrupted object raises and leaves no partial data behind.

        Raises:
            IntegrityError: when the stored bytes no longer match the digest.
        """
        version = self.resolve(ref)
        out = Path(dest)
        blobs = self._ctx.blobs
        if version.kind == "file":
            if out.is_dir():
                out = out / Path(version.source_path or version.name).name
            return blobs.get(version.digest, out, kind="file", verify=True, progress=progress)
        if out.exists():
            if not out.is_dir():
                raise InvalidInput(
                    f"cannot write folder {version.ref} to {str(dest)!r}: it is a file"
                )
            return blobs.get(version.digest, out, kind="dir", verify=True, progress=progress)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            blobs.get(version.digest, tmp, kind="dir", verify=True, progress=progress)
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

    def attach_suite(
        self,
        ref: str | DatasetVersion,
        suite: Suite,
        name: str = "default",
        *,
        created_by: str | None = None,
    ) -> SuiteRecord:
        """Store ``suite`` and attach it to a dataset version under ``name``.

        The suite's YAML goes to the artifact store; attaching again under the same name
        replaces the link. ``ctloop data validate NAME@V`` uses the ``default`` suite.

        Raises:
            InvalidInput: a bad suite name, or ``suite`` is not a Suite.
            NotFound: an unknown dataset or version.
        """
        check_name(name, "suite")
        data = suite_yaml(suite)
        version = self.resolve(ref)
        stored = self._ctx.blobs.put_bytes(data)
        with self._ctx.db.write() as conn:
            row = dataset_suites.attach(
                conn,
                dataset_version_id=version.id,
                name=name,
                digest=stored.digest,
                created_by=created_by if created_by is not None else current_user(),
            )
        return suite_record(row, version)

    def suites(self, ref: str | DatasetVersion) -> builtins.list[SuiteRecord]:
        """The validation suites attached to a dataset version, by name."""
        version = self.resolve(ref)
        with self._ctx.db.read() as conn:
            rows = dataset_suites.list_for_version(conn, version.id)
        return [suite_record(r, version) for r in rows]

    def get_suite(self, ref: str | DatasetVersion, name: str = "default") -> Suite:
        """The validation suite attached to a dataset version under ``name``.

        Raises:
            NotFound: no suite of that name is attached (the message says how to attach
                one), or an unknown dataset or version.
            IntegrityError: the stored YAML no longer matches its digest.
        """
        from ctloop.validation.suite import Suite

        check_name(name, "suite")
        version = self.resolve(ref)
        with self._ctx.db.read() as conn:
            row = dataset_suites.get(conn, version.id, name)
            attached = [] if row else dataset_suites.list_for_version(conn, version.id)
        if row is None:
            raise no_such_suite(version, name, [r["name"] for r in attached])
        try:
            data = self._ctx.blobs.read_bytes(row["digest"])
        except FileNotFoundError:
            raise StoreError(
                f"the artifact store lacks the YAML of suite '{name}' of {version.ref} "
                f"(object {row['digest']}); attach the suite again: "
                f"ctloop data suite {version.ref} --attach"
            ) from None
        return Suite.from_yaml(data, source=f"suite '{name}' of {version.ref}")
