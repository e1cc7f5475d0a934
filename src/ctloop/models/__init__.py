"""Model packages: writing a model with its signature and lineage, and loading it back safely.

``write_package`` writes a folder (``ctloop-model.json`` + the flavor's files) that the
artifact store keeps under one digest; ``load_package`` verifies every file against that
digest before deserialising anything and returns a :class:`LoadedModel` whose ``predict``
checks its input against the signature. See ``docs/models.md``.
"""

from __future__ import annotations

from ctloop.models.loading import LoadedModel, load_package
from ctloop.models.package import ModelManifest, read_manifest, write_package
from ctloop.models.signature import (
    ColumnSpec,
    OutputSpec,
    Signature,
    SignatureMismatch,
    infer_signature,
)

__all__ = [
    "ColumnSpec",
    "LoadedModel",
    "ModelManifest",
    "OutputSpec",
    "Signature",
    "SignatureMismatch",
    "infer_signature",
    "load_package",
    "read_manifest",
    "write_package",
]
