"""Dataset references: ``NAME``, ``NAME@latest`` and ``NAME@3``."""

from __future__ import annotations

from dataclasses import dataclass

from ctloop._internal.names import check_name
from ctloop.errors import InvalidInput

__all__ = ["DatasetRef", "parse_ref"]

LATEST = "latest"


@dataclass(frozen=True)
class DatasetRef:
    """A parsed reference: a dataset name and a version number (None for the latest)."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{LATEST if self.version is None else self.version}"

    @property
    def is_latest(self) -> bool:
        return self.version is None


def parse_ref(value: object) -> DatasetRef:
    """Parse ``NAME``, ``NAME@latest`` or ``NAME@N`` (N ≥ 1).

    Raises:
        InvalidInput: naming the value, when it is not one of those forms.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"invalid dataset reference {value!r}: use NAME, NAME@latest or NAME@VERSION"
        )
    name, sep, version = value.partition("@")
    if not name:
        raise InvalidInput(
            f"invalid dataset reference {value!r}: it has no name before '@'; "
            "use NAME, NAME@latest or NAME@VERSION"
        )
    try:
        check_name(name, "dataset")
    except InvalidInput as exc:
        raise InvalidInput(f"invalid dataset reference {value!r}: {exc}") from None
    if not sep or version == LATEST:
        return DatasetRef(name)
    if not version.isascii() or not version.isdigit() or int(version) < 1:
        raise InvalidInput(
            f"invalid dataset reference {value!r}: the version after '@' must be 'latest' "
            f"or a whole number from 1, not {version!r}"
        )
    return DatasetRef(name, int(version))
