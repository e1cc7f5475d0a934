"""Checks shared by both backends of ``client.loop``.

The HTTP backend runs these before any request, so bad input fails there with the local
backend's message; the server (a local client) runs them again.

JSON values (state data, evidence, links) are stored as plain JSON: tuples become lists,
keys text, and NaN and infinity ``null`` (a metric that could not be computed has no
value; JSON has no NaN). Anything else that is not JSON (a set, an object) is refused.
A policy is configuration, so a NaN or infinity in it is refused rather than nulled.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from ctloop.errors import InvalidInput
from ctloop.loop.entities import LoopStateName

__all__ = [
    "MAX_TTL_SECONDS",
    "check_after_seq",
    "check_event_id",
    "check_kind",
    "check_kinds",
    "check_owner",
    "check_policy",
    "check_revision",
    "check_source",
    "check_state",
    "check_step",
    "check_summary",
    "check_ttl",
    "check_version",
    "json_object",
]

MAX_TTL_SECONDS = 7 * 24 * 3600.0
MAX_SOURCE = 1_000_000
MAX_SUMMARY = 2_000
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_STATES = ", ".join(s.value for s in LoopStateName)


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def json_object(value: object, where: str, *, finite: bool = False) -> dict[str, Any]:
    """``value`` (a mapping) as a plain JSON object.

    NaN and infinity become None, or are refused with ``finite=True``.

    Raises:
        InvalidInput: not a mapping, or holding something JSON has no form for.
    """
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be a dict of JSON values, got {type(value).__name__}")

    def clean(v: Any, path: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            if finite:
                raise InvalidInput(f"{where} holds {v!r} at {path}: use a finite number")
            return None
        if isinstance(v, Mapping):
            return {str(k): clean(x, f"{path}.{k}") for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if v is None or isinstance(v, str | int | float | bool):
            return v
        raise InvalidInput(
            f"{where} holds a {type(v).__name__} at {path}, which JSON cannot store; use "
            "dicts, lists, text, numbers, booleans and None"
        )

    out = clean(value, where)
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:  # e.g. a number too large for a float
        raise InvalidInput(f"{where} must hold JSON values only: {exc}") from None
    assert isinstance(out, dict)
    return out


def check_state(value: object) -> LoopStateName:
    """A state name (any case), e.g. ``CANARY``."""
    if isinstance(value, LoopStateName):
        return value
    if isinstance(value, str):
        try:
            return LoopStateName(value.strip().upper())
        except ValueError:
            pass
    raise InvalidInput(f"unknown loop state {value!r}: use one of {_STATES}")


def check_step(value: object) -> int | None:
    """A canary step: None or a whole number >= 0."""
    if value is None:
        return None
    if not _whole(value) or not 0 <= value < 2**31:
        raise InvalidInput(f"step={value!r} must be a whole number >= 0 (or None)")
    return int(value)


def check_version(value: object) -> int | None:
    """A candidate model version: None or a whole number >= 1."""
    if value is None:
        return None
    if not _whole(value) or not 1 <= value < 2**31:
        raise InvalidInput(f"candidate_version={value!r} must be a model version >= 1 (or None)")
    return int(value)


def check_revision(value: object) -> int:
    """An expected revision: a whole number >= 0 (0: never written)."""
    if not _whole(value) or not 0 <= value < 2**31:
        raise InvalidInput(
            f"expected_revision={value!r} must be a whole number >= 0: the revision of the "
            "state you read (client.loop.state(DEPLOYMENT).revision)"
        )
    return int(value)


def check_kind(value: object) -> str:
    """An event kind: lowercase snake_case, e.g. ``gate_passed``."""
    if not isinstance(value, str) or not _KIND.match(value):
        raise InvalidInput(
            f"invalid event kind {value!r}: use 1-64 lowercase letters, digits and '_', "
            "starting with a letter, e.g. triggered, gate_passed, canary_step, note"
        )
    return value


def check_kinds(value: object) -> list[str] | None:
    """Kinds to filter events by (None: all)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [check_kind(value)]
    if isinstance(value, bytes | Mapping) or not isinstance(value, Sequence) or not value:
        raise InvalidInput(f"kinds must be a non-empty list of event kinds, got {value!r}")
    return sorted({check_kind(k) for k in value})


def check_summary(value: object) -> str:
    """One sentence saying what happened (1-2,000 characters)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SUMMARY:
        raise InvalidInput(
            f"summary must be a non-empty sentence of at most {MAX_SUMMARY} characters, "
            f"got {value!r:.80}"
        )
    return value


def check_owner(value: object, *, optional: bool = False) -> str | None:
    """A lease owner: 1-256 printable characters (e.g. ``controller@host:pid``)."""
    if value is None and optional:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > 256
        or not value.isprintable()
    ):
        raise InvalidInput(
            f"owner={value!r} must be 1-256 printable characters naming the controller, "
            "e.g. controller@host:1234"
        )
    return value


def check_ttl(value: object) -> int:
    """A lease duration in seconds (above 0, at most 7 days), as milliseconds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_TTL_SECONDS
    ):
        raise InvalidInput(
            f"ttl_seconds={value!r} must be a number of seconds above 0 and at most "
            f"{int(MAX_TTL_SECONDS)} (7 days); renew a lease to hold it longer"
        )
    return max(1, round(value * 1000))


def check_after_seq(value: object) -> int | None:
    """Only events after this ``seq`` (None: from the first)."""
    if value is None:
        return None
    if not _whole(value) or value < 0:
        raise InvalidInput(f"after_seq={value!r} must be a whole number >= 0 (or None)")
    return int(value)


def check_event_id(value: object) -> str:
    """An event id: 1-64 letters, digits, '_' or '-'."""
    if not isinstance(value, str) or not _EVENT_ID.match(value):
        raise InvalidInput(f"invalid event id {value!r}: use 1-64 letters, digits, '_' or '-'")
    return value


def check_source(value: object) -> str:
    """A policy's source text (the YAML as given), non-empty, at most 1 MB."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SOURCE:
        raise InvalidInput(
            f"source must be the policy's text (YAML), non-empty and at most {MAX_SOURCE} "
            f"characters, got {type(value).__name__}"
        )
    return value


def check_policy(value: object) -> dict[str, Any]:
    """A parsed policy: a JSON object with finite numbers."""
    return json_object(value, "policy", finite=True)
