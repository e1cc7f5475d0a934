"""Module-level shortcuts: ``ctloop.add_dataset`` and ``ctloop.get_dataset``.

They use the process-wide default :class:`~ctloop.Client` (the one ``ctloop.start_run``
uses too), built from the environment (``CTLOOP_STORE``, ``CTLOOP_ARTIFACTS``,
``ctloop.toml``) on first use, never at import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.client import Client
    from ctloop.data.entities import DatasetVersion

__all__ = ["add_dataset", "get_dataset"]


def _default_client() -> Client:
    """The shared client, created from the environment on the first call.

    Imported lazily: this module sits below the client layer and must not pull it (and
    SQLAlchemy) in at import.
    """
    from ctloop.client.default import default_client

    return default_client()


def add_dataset(path: str | os.PathLike[str], name: str, **kwargs: Any) -> DatasetVersion:
    """Add a file or folder as the next version of dataset ``name`` (if it changed).

    Takes the keyword arguments of :meth:`ctloop.client.datasets.DatasetsAPI.add`
    (``description``, ``pointer``, ``progress``).
    """
    return _default_client().datasets.add(path, name, **kwargs)


def get_dataset(ref: str) -> DatasetVersion:
    """The dataset version named by ``NAME``, ``NAME@latest`` or ``NAME@3``."""
    return _default_client().datasets.get(ref)
