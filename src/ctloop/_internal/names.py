"""Checks on names and paths that come from users."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ctloop.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_KEY = re.compile(r"^[A-Za-z0-9_.\-/ ]{1,250}$")


def check_name(value: object, what: str) -> str:
    """Validate a resource name (experiment, dataset, model…) and return it.

    Names start with a letter or digit and hold letters, digits, ``_``, ``.`` and ``-``,
    at most 128 characters, so they are safe in URLs, file names and the ``NAME@V`` syntax.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            f"invalid {what} name {value!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_key(value: object, what: str) -> str:
    """Validate a param, metric or tag key (MLflow's rules: may contain '/', ' ')."""
    if not isinstance(value, str) or not _KEY.match(value) or value.strip() != value:
        raise InvalidInput(
            f"invalid {what} key {value!r}: use 1-250 letters, digits, '_', '-', '.', '/' "
            "or spaces, with no leading or trailing space"
        )
    if ".." in value.split("/") or value.startswith("/"):
        raise InvalidInput(
            f"invalid {what} key {value!r}: it may not contain '..' or start with '/'"
        )
    return value


def check_relative_path(value: object, what: str = "artifact path") -> str:
    """Validate a user-given relative path inside the store and return it in POSIX form.

    Refuses absolute paths, ``..`` components, NUL bytes, backslashes and empty names, so
    no path given by a user can escape the folder it is meant for.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"invalid {what} {value!r}: it must be a non-empty relative path")
    if "\x00" in value:
        raise InvalidInput(f"invalid {what} {value!r}: it contains a NUL byte")
    if "\\" in value:
        raise InvalidInput(f"invalid {what} {value!r}: use '/' as the separator, not '\\'")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise InvalidInput(f"invalid {what} {value!r}: it must be relative, not absolute")
    parts = PurePosixPath(value).parts
    if any(p == ".." for p in parts):
        raise InvalidInput(f"invalid {what} {value!r}: '..' is not allowed")
    clean = "/".join(p for p in parts if p != ".")
    if not clean:
        raise InvalidInput(f"invalid {what} {value!r}: it names no file")
    return clean
