"""The model registry: named models, immutable numbered versions, aliases that move.

Versions are registered from model packages that runs logged (``client.models.register``
or ``ctloop.register_model``); aliases (``champion``, ``challenger`` …) point at versions,
and every move of one is an :class:`AliasEvent` kept forever. Models are named anywhere by
``NAME/VERSION``, ``NAME@ALIAS``, ``NAME`` (the latest) or ``runs:/RUN_ID/PATH``.
"""

from __future__ import annotations

from ctloop.registry.entities import (
    AliasEvent,
    CodeVersion,
    Lineage,
    LineageRun,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from ctloop.registry.refs import ModelRef, check_alias, parse_model_ref

__all__ = [
    "AliasEvent",
    "CodeVersion",
    "Lineage",
    "LineageRun",
    "ModelRef",
    "ModelVersion",
    "ModelVersionStatus",
    "RegisteredModel",
    "check_alias",
    "parse_model_ref",
]
