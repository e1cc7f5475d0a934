"""Model references and alias names.

A model is named anywhere (Python, CLI, deployments) by one string:

- ``NAME/VERSION`` (``churn/3``) — one version;
- ``NAME@ALIAS`` (``churn@champion``) — the version an alias points to now;
- ``NAME`` or ``NAME@latest`` or ``NAME/latest`` — the newest version;
- ``runs:/RUN_ID/PATH`` — a model package logged by a run, registered or not.

MLflow's ``models:/NAME/VERSION`` and ``models:/NAME@ALIAS`` are accepted too, and
``NAME@3`` means version 3 (the dataset syntax), since an alias may not look like a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ctloop._internal.names import check_name, check_relative_path
from ctloop.errors import InvalidInput

__all__ = ["LATEST", "ModelRef", "check_alias", "parse_model_ref"]

LATEST = "latest"
RUNS_PREFIX = "runs:/"
MODELS_PREFIX = "models:/"  # MLflow's spelling
FORMS = "use NAME/VERSION, NAME@ALIAS, NAME (the latest version) or runs:/RUN_ID/PATH"

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_VERSION_LIKE = re.compile(r"^[vV]?\d+$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference.

    Exactly one form is set: ``version``, ``alias``, ``run_id`` (with ``artifact_path``),
    or none of them, which means the latest version of ``name``.
    """

    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    artifact_path: str | None = None

    @property
    def is_run(self) -> bool:
        """A ``runs:/RUN_ID/PATH`` reference (not in the registry)."""
        return self.run_id is not None

    @property
    def is_latest(self) -> bool:
        """Names the newest version of a model."""
        return not self.is_run and self.version is None and self.alias is None

    def __str__(self) -> str:
        if self.run_id is not None:
            return f"{RUNS_PREFIX}{self.run_id}/{self.artifact_path}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias or LATEST}"


def check_alias(value: object) -> str:
    """Validate an alias that is to be set, and return it.

    Aliases start with a letter and hold letters, digits, ``_`` and ``-`` (at most 64).
    ``latest`` is reserved (it always names the newest version) and an alias may not look
    like a version (``3``, ``v3``), so ``NAME@X`` is never ambiguous.
    """
    if not isinstance(value, str) or not _ALIAS.match(value):
        raise InvalidInput(
            f"invalid alias {value!r}: use 1-64 letters, digits, '_' or '-', starting with "
            "a letter (e.g. champion, challenger)"
        )
    if value.lower() == LATEST:
        raise InvalidInput(
            f"the alias {value!r} is reserved: it always names the newest version and "
            "cannot be set; pick another name (e.g. champion)"
        )
    if _VERSION_LIKE.match(value):
        raise InvalidInput(
            f"invalid alias {value!r}: it looks like a version number; pick a name such as "
            "champion or challenger"
        )
    return value


def _bad(value: object, why: str) -> InvalidInput:
    return InvalidInput(f"invalid model reference {value!r}: {why}; {FORMS}")


def _name(value: str, name: str) -> str:
    if not name:
        raise _bad(value, "it has no model name")
    try:
        return check_name(name, "model")
    except InvalidInput as exc:
        raise _bad(value, str(exc)) from None


def _version(value: str, text: str, after: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise _bad(
            value, f"the version after '{after}' must be a whole number from 1, not {text!r}"
        )
    return int(text)


def _run_ref(value: str) -> ModelRef:
    run_id, _, path = value[len(RUNS_PREFIX) :].partition("/")
    if not _RUN_ID.match(run_id):
        raise _bad(value, f"{run_id!r} is not a run id")
    if not path:
        raise _bad(value, "it names no artifact after the run id (e.g. runs:/RUN_ID/model)")
    try:
        clean = check_relative_path(path)
    except InvalidInput as exc:
        raise _bad(value, str(exc)) from None
    return ModelRef(run_id=run_id, artifact_path=clean)


def parse_model_ref(value: object) -> ModelRef:
    """Parse a model reference string, or a ``(name, version)`` pair.

    Raises:
        InvalidInput: naming the value and the forms that are accepted.
    """
    if isinstance(value, ModelRef):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        name, version = value
        if not isinstance(name, str) or isinstance(version, bool) or not isinstance(version, int):
            raise _bad(value, "a pair must be (NAME, VERSION) with a whole-number version")
        if version < 1:
            raise _bad(value, f"versions count from 1, not {version}")
        return ModelRef(name=_name(str(value), name), version=version)
    if not isinstance(value, str) or not value:
        raise _bad(value, "it is empty or not a string")
    if value.startswith(RUNS_PREFIX):
        return _run_ref(value)
    text = value[len(MODELS_PREFIX) :] if value.startswith(MODELS_PREFIX) else value
    if "@" in text:
        name, _, alias = text.partition("@")
        name = _name(value, name)
        if not alias or alias == LATEST:
            if not alias:
                raise _bad(value, "it has no alias after '@'")
            return ModelRef(name=name)
        if alias.isascii() and alias.isdigit():
            return ModelRef(name=name, version=_version(value, alias, "@"))
        if _VERSION_LIKE.match(alias):
            raise _bad(
                value, f"{alias!r} is not an alias; name version {alias[1:]} as {name}/{alias[1:]}"
            )
        if not _ALIAS.match(alias):
            raise _bad(value, f"{alias!r} is not a valid alias name")
        return ModelRef(name=name, alias=alias)
    if "/" in text:
        name, _, version = text.partition("/")
        name = _name(value, name)
        if version == LATEST:
            return ModelRef(name=name)
        return ModelRef(name=name, version=_version(value, version, "/"))
    return ModelRef(name=_name(value, text))
