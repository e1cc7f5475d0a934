"""Pointer files: a small YAML file beside the data that git can track.

``train.csv`` gets ``train.csv.ctloop.yaml``; a folder ``data/`` gets ``data.ctloop.yaml``.
The file names the dataset version the data was added as, so a commit of the code pins
the data it was run on, as a DVC ``.dvc`` file does.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ctloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ctloop.data.entities import DatasetVersion

__all__ = ["POINTER_SUFFIX", "pointer_path", "read_pointer", "write_pointer"]

POINTER_SUFFIX = ".ctloop.yaml"
POINTER_FORMAT = 1


def pointer_path(data: str | os.PathLike[str]) -> Path:
    """Where the pointer file of ``data`` (a file or a folder) goes."""
    absolute = Path(os.path.abspath(data))
    if not absolute.name:
        raise InvalidInput(
            f"cannot place a pointer file beside {str(data)!r}: it has no parent folder; "
            "add it without a pointer (--no-pointer)"
        )
    return absolute.with_name(absolute.name + POINTER_SUFFIX)


def pointer_content(version: DatasetVersion, data_name: str) -> str:
    """The text of the pointer file for ``version`` of data called ``data_name``."""
    fields: dict[str, Any] = {
        "ctloop": POINTER_FORMAT,
        "name": version.name,
        "version": version.version,
        "digest": version.digest,
        "kind": version.kind,
        "size": version.size,
        "file_count": version.file_count,
    }
    if version.format is not None:
        fields["format"] = version.format
    if version.row_count is not None:
        fields["row_count"] = version.row_count
    header = (
        "# ctloop dataset pointer: commit this file; the data lives in the ctloop store.\n"
        f"# Restore the data with: ctloop data get {version.ref} -o {data_name}\n"
    )
    return header + yaml.safe_dump(fields, sort_keys=False)


def write_pointer(data: str | os.PathLike[str], version: DatasetVersion) -> Path:
    """Write (atomically) the pointer file of ``data`` for ``version``; returns its path.

    An existing pointer with the same content is left untouched, so re-adding unchanged
    data does not even change the pointer's modification time.
    """
    target = pointer_path(data)
    text = pointer_content(version, Path(os.path.abspath(data)).name)
    try:
        if target.read_text(encoding="utf-8") == text:
            return target
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def read_pointer(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fields of a pointer file (given either the pointer or the data path).

    Raises:
        NotFound: when there is no pointer file.
        InvalidInput: when the file is not a ctloop pointer.
    """
    p = Path(path)
    if not p.name.endswith(POINTER_SUFFIX):
        p = pointer_path(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no pointer file {str(p)!r}") from None
    try:
        fields = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{str(p)!r} is not a ctloop pointer file: {exc}") from None
    if not isinstance(fields, dict) or "digest" not in fields or "name" not in fields:
        raise InvalidInput(f"{str(p)!r} is not a ctloop pointer file: it names no dataset")
    return fields
