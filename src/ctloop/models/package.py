"""Model packages: a folder with ``ctloop-model.json`` and the flavor's files.

Layout::

    ctloop-model.json     the manifest (below)
    model.skops           the model, in its flavor's format (model.ubj, model.txt, model.pkl)
    input_example.json    up to 5 rows of the input example, as records (optional)

The manifest records the flavor and its library version, the model's class, its signature,
pinned requirements, the Python version, when it was made, the sha256 of every other file
and its lineage (run, artifact path, input dataset versions, git commit). The folder is
stored with ``BlobStore.put`` as a ``dir`` object whose digest is the package digest; since
that digest covers the manifest and every file, a package cannot change without changing
its digest, and :func:`read_manifest` checks that the manifest's ``files`` list the same
files, with the same digests, as the stored folder.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._internal.hashing import is_sha256, sha256_file
from ctloop._internal.names import check_relative_path
from ctloop.errors import IntegrityError, InvalidInput, NotFound

if TYPE_CHECKING:
    from ctloop.artifacts.blobstore import BlobStore, DirEntry
    from ctloop.models.signature import Signature

__all__ = [
    "FORMAT_VERSION",
    "INPUT_EXAMPLE_FILE",
    "MANIFEST_FILE",
    "ModelManifest",
    "read_manifest",
    "write_package",
]

FORMAT_VERSION = 1
MANIFEST_FILE = "ctloop-model.json"
INPUT_EXAMPLE_FILE = "input_example.json"
EXAMPLE_ROWS = 5


def _empty_lineage() -> dict[str, Any]:
    return {
        "run_id": None,
        "artifact_path": None,
        "inputs": [],
        "git_commit": None,
        "git_dirty": None,
    }


@dataclass
class ModelManifest:
    """The contents of ``ctloop-model.json`` (plain JSON values, as stored)."""

    flavor: str
    flavor_version: str
    model_class: str
    signature: dict[str, Any] | None
    requirements: list[str]
    python_version: str
    created_at: str
    files: dict[str, str]
    lineage: dict[str, Any] = field(default_factory=_empty_lineage)
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        """The manifest as stored: indented, sorted keys, UTF-8, trailing newline."""
        return (
            json.dumps(
                self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False
            )
            + "\n"
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> ModelManifest:
        """Parse and check a manifest.

        Raises:
            InvalidInput: malformed JSON, a missing or mistyped key, a file path that
                could escape the package, or a format newer than this ctloop reads.
        """
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"{MANIFEST_FILE} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise InvalidInput(f"{MANIFEST_FILE} must hold a JSON object")
        version = raw.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInput(f"{MANIFEST_FILE} has no valid format_version ({version!r})")
        if version > FORMAT_VERSION:
            raise InvalidInput(
                f"this package has format version {version}, newer than this ctloop reads "
                f"({FORMAT_VERSION}); upgrade ctloop to load it"
            )
        expected: dict[str, type | tuple[type, ...]] = {
            "flavor": str,
            "flavor_version": str,
            "model_class": str,
            "signature": (dict, type(None)),
            "requirements": list,
            "python_version": str,
            "created_at": str,
            "files": dict,
            "lineage": dict,
            "metadata": dict,
        }
        for key, kind in expected.items():
            if key not in raw:
                raise InvalidInput(f"{MANIFEST_FILE} has no {key!r}")
            if not isinstance(raw[key], kind):
                raise InvalidInput(f"{MANIFEST_FILE}: {key!r} has the wrong type")
        files: dict[str, str] = {}
        for path, digest in raw["files"].items():
            clean = check_relative_path(path, f"file path in {MANIFEST_FILE}")
            if clean != path or clean == MANIFEST_FILE:
                raise InvalidInput(f"{MANIFEST_FILE} lists an invalid file path {path!r}")
            if not isinstance(digest, str) or not is_sha256(digest):
                raise InvalidInput(f"{MANIFEST_FILE} lists an invalid digest for {path!r}")
            files[path] = digest
        if not all(isinstance(r, str) for r in raw["requirements"]):
            raise InvalidInput(f"{MANIFEST_FILE}: requirements must be strings")
        lineage = {**_empty_lineage(), **raw["lineage"]}
        return cls(
            flavor=raw["flavor"],
            flavor_version=raw["flavor_version"],
            model_class=raw["model_class"],
            signature=raw["signature"],
            requirements=list(raw["requirements"]),
            python_version=raw["python_version"],
            created_at=raw["created_at"],
            files=files,
            lineage=lineage,
            metadata=raw["metadata"],
            format_version=version,
        )

    def parsed_signature(self) -> Signature | None:
        """The signature as a :class:`~ctloop.models.signature.Signature` (None if absent)."""
        from ctloop.models.signature import Signature

        return Signature.from_dict(self.signature) if self.signature is not None else None


# --- writing --------------------------------------------------------------------------------


def write_package(
    model: Any,
    dest: Path,
    *,
    flavor: str | None = None,
    input_example: Any = None,
    lineage: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ModelManifest:
    """Write ``model`` as a package into the folder ``dest`` (created; must be empty).

    Args:
        model: the fitted model.
        dest: the package folder.
        flavor: ``sklearn``, ``xgboost``, ``lightgbm`` or ``python``; detected if None
            (XGBoost and LightGBM models get their own flavor, other scikit-learn
            estimators ``sklearn``, anything else with ``predict`` ``python``).
        input_example: a DataFrame (or records, a dict of columns, a 2-D array) the
            signature is inferred from; its first 5 rows are kept as ``input_example.json``.
        lineage: ``run_id``, ``artifact_path``, ``inputs`` (``[{dataset, version,
            digest}]``), ``git_commit``, ``git_dirty``; other keys are kept as given.
        metadata: free JSON-serialisable values.

    Raises:
        InvalidInput: an unknown flavor, a model the flavor cannot store, a non-empty
            ``dest``, metadata that is not JSON.
    """
    from ctloop.models.flavors import class_path, detect_flavor, get_flavor
    from ctloop.models.signature import infer_signature, to_frame

    chosen = get_flavor(flavor) if flavor is not None else detect_flavor(model)
    if not chosen.matches(model):
        raise InvalidInput(
            f"the {chosen.name} flavor cannot store a {class_path(model)}; leave flavor unset "
            "to pick one automatically"
        )
    meta = dict(metadata or {})
    _check_json(meta, "metadata")
    # the standard keys are always present; callers may add more (e.g. a pipeline run)
    lineage_out = {**_empty_lineage(), **(lineage or {})}
    _check_json(lineage_out, "lineage")

    signature = infer_signature(input_example, model) if input_example is not None else None
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"cannot write a model package into {str(dest)!r}: it is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        chosen.save(model, dest)
        if input_example is not None:
            frame = to_frame(input_example)  # arrays get the signature's x0, x1 … names
            example = frame.head(EXAMPLE_ROWS).to_json(orient="records", date_format="iso")
            (dest / INPUT_EXAMPLE_FILE).write_text(example + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # no half-written package left behind
        raise

    files = {}
    for root, dirs, names in os.walk(dest):
        dirs.sort()
        for name in sorted(names):
            rel = (Path(root) / name).relative_to(dest).as_posix()
            if rel != MANIFEST_FILE:
                files[rel] = sha256_file(Path(root) / name)[0]
    manifest = ModelManifest(
        flavor=chosen.name,
        flavor_version=chosen.version(),
        model_class=class_path(model),
        signature=signature.to_dict() if signature is not None else None,
        requirements=chosen.requirements(model),
        python_version=platform.python_version(),
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        files=files,
        lineage=lineage_out,
        metadata=meta,
    )
    (dest / MANIFEST_FILE).write_bytes(manifest.to_json())
    return manifest


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be JSON-serialisable: {exc}") from None


# --- reading --------------------------------------------------------------------------------


def read_package(blobs: BlobStore, package_digest: str) -> tuple[ModelManifest, list[DirEntry]]:
    """The verified manifest of a stored package and the folder's entries."""
    if not blobs.exists(package_digest, "dir"):
        if blobs.exists(package_digest, "file"):
            raise InvalidInput(f"object {package_digest} is a file, not a model package (a folder)")
        raise NotFound(f"no model package {package_digest} in the artifact store {blobs.root}")
    entries = blobs.read_manifest(package_digest)
    by_path = {e.path: e for e in entries}
    if MANIFEST_FILE not in by_path:
        raise InvalidInput(
            f"object {package_digest} is not a model package: it has no {MANIFEST_FILE}"
        )
    try:
        raw = blobs.read_bytes(by_path[MANIFEST_FILE].sha256)
    except IntegrityError as exc:
        raise IntegrityError(
            f"model package {package_digest}: {MANIFEST_FILE} failed its digest check; "
            f"nothing was loaded ({exc})"
        ) from None
    manifest = ModelManifest.from_json(raw)
    stored = {e.path: e.sha256 for e in entries if e.path != MANIFEST_FILE}
    if stored != manifest.files:
        problems = []
        for path in sorted(set(stored) | set(manifest.files)):
            if path not in manifest.files:
                problems.append(f"{path!r} is stored but not in the manifest")
            elif path not in stored:
                problems.append(f"{path!r} is in the manifest but not stored")
            elif stored[path] != manifest.files[path]:
                problems.append(f"{path!r} has a different digest than the manifest records")
        raise IntegrityError(
            f"model package {package_digest} does not match its manifest: " + "; ".join(problems)
        )
    return manifest, entries


def read_manifest(blobs: BlobStore, package_digest: str) -> ModelManifest:
    """The manifest of the package stored under ``package_digest``, verified.

    Raises:
        NotFound: no such folder object.
        IntegrityError: the manifest's bytes fail their digest, or its ``files`` differ
            from the stored folder's entries.
        InvalidInput: the object is not a model package or its manifest is malformed.
    """
    return read_package(blobs, package_digest)[0]
