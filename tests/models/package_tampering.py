"""Helpers that forge model packages the way an attacker would: consistent digests, bad content.

A forged package has a valid manifest whose ``files`` match the new content, so every digest
check passes; only ctloop's checks of the content itself stand between it and the process.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ctloop._internal.hashing import sha256_file
from ctloop.models.package import MANIFEST_FILE, ModelManifest


def find_states(schema: Any, class_name: str) -> Iterator[dict[str, Any]]:
    """Every state in a skops schema whose ``__class__`` is ``class_name`` (document order)."""
    if isinstance(schema, dict):
        if schema.get("__class__") == class_name:
            yield schema
        for value in schema.values():
            yield from find_states(value, class_name)
    elif isinstance(schema, list):
        for value in schema:
            yield from find_states(value, class_name)


def edit_skops(package: Path, edit: Callable[[dict[str, Any], dict[str, bytes]], None]) -> None:
    """Rewrite ``model.skops`` through ``edit(schema, members)`` and re-seal the manifest."""
    path = package / "model.skops"
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema, members)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    reseal(package)


def reseal(package: Path) -> None:
    """Make the manifest's file digests match the folder again (what a forger does)."""
    manifest = ModelManifest.from_json((package / MANIFEST_FILE).read_bytes())
    manifest.files = {
        p.relative_to(package).as_posix(): sha256_file(p)[0]
        for p in sorted(package.rglob("*"))
        if p.is_file() and p.name != MANIFEST_FILE
    }
    (package / MANIFEST_FILE).write_bytes(manifest.to_json())


def read_npy(members: dict[str, bytes], node: dict[str, Any]) -> np.ndarray:
    return np.load(io.BytesIO(members[node["file"]]), allow_pickle=False)


def write_npy(members: dict[str, bytes], node: dict[str, Any], array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    members[node["file"]] = buffer.getvalue()


def edit_tree_nodes(
    package: Path, change: Callable[[np.ndarray], None], class_name: str = "Tree", which: int = 0
) -> None:
    """Change the node array of the ``which``-th Tree (or TreePredictor) in the file."""

    def edit(schema: dict[str, Any], members: dict[str, bytes]) -> None:
        state = list(find_states(schema, class_name))[which]
        nodes = state["content"]["content"]["nodes"]
        array = read_npy(members, nodes)
        change(array)
        write_npy(members, nodes, array)

    edit_skops(package, edit)


def overwrite_object(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace a stored object's bytes in place (objects are read-only: chmod first)."""
    os.chmod(path, 0o644)
    Path(path).write_bytes(data)


LOAD_SCRIPT = """
import json, sys
from ctloop.artifacts.blobstore import BlobStore
from ctloop.models import load_package
blobs = BlobStore(sys.argv[1])
results = {}
for digest in sys.argv[2:]:
    try:
        model = load_package(blobs, digest)
        results[digest] = {"ok": True, "predict": repr(model.raw)[:80]}
    except Exception as exc:
        results[digest] = {"ok": False, "type": type(exc).__name__, "message": str(exc)}
print(json.dumps(results))
"""


def load_in_subprocess(root: str, digests: list[str]) -> dict[str, dict[str, Any]]:
    """Load packages in a child process, so a crash there cannot take the test run down."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, root, *digests],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, (
        f"the loader process died (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    result: dict[str, dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
