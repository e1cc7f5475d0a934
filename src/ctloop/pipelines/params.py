"""Pipeline params from text (``-p key=value``), typed by the pipeline's signature.

What the command line (and anything else that receives params as strings) uses: an
annotated ``int``, ``float``, ``bool`` or ``str`` param (or one whose default has that
type) is parsed as that type, with a message naming the param when the text does not fit;
anything else is read as a YAML value.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    from ctloop.pipelines.definition import Pipeline

__all__ = ["params_from_text"]

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


def _annotation(pipe: Pipeline, name: str) -> Any:
    """The type a param is declared with (its default's type when undeclared), or None."""
    param = pipe.signature.parameters[name]
    hint: Any = param.annotation
    if isinstance(hint, str):  # `from __future__ import annotations` in the user's module
        try:
            hint = typing.get_type_hints(pipe.fn).get(name, hint)
        except Exception:  # an annotation that does not evaluate: read its text instead
            text = hint.replace(" ", "").removesuffix("|None").removeprefix("None|")
            hint = _SCALARS.get(text)
    if hint is inspect.Parameter.empty:
        default = param.default
        return type(default) if type(default) in _SCALARS.values() else None
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else None
    return hint if hint in _SCALARS.values() else None


def _coerce(pipe: Pipeline, name: str, text: str) -> Any:
    kind = _annotation(pipe, name)
    if kind is str:
        return text
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise InvalidInput(f"param {name!r} takes true or false, not {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise InvalidInput(f"param {name!r} takes {what}, not {text!r}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise InvalidInput(f"param {name!r}: {text!r} is not a YAML value ({first})") from None


def params_from_text(pipe: Pipeline, pairs: Sequence[str]) -> dict[str, Any]:
    """``-p key=value`` options as the pipeline's params, typed by its signature.

    Raises:
        InvalidInput: a pair without ``=``, a param the pipeline lacks, one given twice, or
            a value that is not of the param's type.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"invalid param {pair!r}: use -p NAME=VALUE")
        pipe.check_param_names([key])
        if key in out:
            raise InvalidInput(f"param {key!r} is given twice; give it once")
        out[key] = _coerce(pipe, key, text)
    return out
