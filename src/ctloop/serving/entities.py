"""What a deployment is: the desired serving state of one endpoint, and its history.

A :class:`Deployment` serves versions of one registered model. Its routes split live
traffic by integer weights that add up to 100; its shadows get a copy of every request
whose answers are logged, never returned. Every change bumps ``revision`` and is kept as a
:class:`DeploymentEvent`, so replicas poll one number and converge when it moves.

The checks here are pure (no store): the local and HTTP clients run them before anything
is sent or written, so bad input fails the same way on both backends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ctloop.errors import InvalidInput

__all__ = [
    "STICKY_KINDS",
    "Deployment",
    "DeploymentEvent",
    "Route",
    "RouteSpec",
    "assign_variants",
    "check_shadows",
    "check_sticky_key",
    "check_variant",
    "parse_weights",
]

STICKY_KINDS = ("header", "field")
TOTAL_WEIGHT = 100
MAX_VERSION = 2**31 - 1  # the registry's version column is a 32-bit integer
CANARY = "canary"

_VARIANT = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~\-]{1,128}$")  # an HTTP token (RFC 9110)
_FIELD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_SPLIT_HELP = "write VERSION=WEIGHT or VERSION=WEIGHT:VARIANT, e.g. 3=90 4=10"


@dataclass(frozen=True)
class Route:
    """One model version getting ``weight`` percent of the traffic, labelled ``variant``."""

    version: int
    weight: int
    variant: str


@dataclass(frozen=True)
class Deployment:
    """The desired serving state of one endpoint (see the module docstring).

    ``sticky_key`` (``header:NAME`` or ``field:NAME``) pins a caller to a variant: the
    variant is ``hash(salt ‖ key) mod 10000`` against the cumulative weights.
    """

    id: str
    name: str
    model: str  # the registered model every route and shadow is a version of
    routes: list[Route]
    shadows: list[int]
    sticky_key: str | None
    log_payloads: bool
    revision: int  # starts at 1; +1 on every change
    created_at: datetime
    updated_at: datetime
    description: str | None = None

    def variant_of(self, version: int) -> str | None:
        """The variant routing to ``version``, or None when no route does."""
        return next((r.variant for r in self.routes if r.version == version), None)


@dataclass(frozen=True)
class DeploymentEvent:
    """One revision of a deployment as it was set: kept until the deployment is deleted.

    Revision 1 is the deployment's creation.
    """

    revision: int
    routes: list[Route]
    shadows: list[int]
    sticky_key: str | None
    actor: str
    created_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class RouteSpec:
    """A route as a caller asked for it: the variant may be left for the defaults."""

    version: int
    weight: int
    variant: str | None = None

    def __str__(self) -> str:
        tail = f":{self.variant}" if self.variant else ""
        return f"{self.version}={self.weight}{tail}"


# --- checks -------------------------------------------------------------------------------


def check_variant(value: object) -> str:
    """Validate a variant name (``champion``, ``canary``, ``v4`` …) and return it."""
    if not isinstance(value, str) or not _VARIANT.match(value):
        raise InvalidInput(
            f"invalid variant {value!r}: use 1-64 letters, digits, '_' or '-', starting with "
            "a letter (e.g. champion, canary)"
        )
    return value


def check_sticky_key(value: object) -> str | None:
    """Validate a sticky key, ``header:NAME`` or ``field:NAME`` (None: not sticky)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else ""
    kind, sep, name = text.partition(":")
    pattern = _HEADER if kind == "header" else _FIELD if kind == "field" else None
    if not sep or pattern is None or not pattern.match(name):
        raise InvalidInput(
            f"invalid sticky key {value!r}: write header:NAME (a request header, e.g. "
            "header:X-User-Id) or field:NAME (an input field, e.g. field:customer_id)"
        )
    return f"{kind}:{name}"


def _whole(value: object, what: str, item: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"invalid {what} {value!r} in the traffic split {item!r}: {_SPLIT_HELP}")
    return value


def _spec_from_text(item: str) -> RouteSpec:
    left, eq, right = item.strip().partition("=")
    weight_text, colon, variant = right.partition(":")
    if not eq or not left.strip().isdigit() or not weight_text.strip().isdigit():
        raise InvalidInput(f"invalid traffic split {item!r}: {_SPLIT_HELP}")
    if colon and not variant:
        raise InvalidInput(f"invalid traffic split {item!r}: no variant name after ':'")
    return RouteSpec(int(left), int(weight_text), check_variant(variant) if colon else None)


def _spec(item: object) -> RouteSpec:
    if isinstance(item, RouteSpec):
        return item
    if isinstance(item, Route):
        return RouteSpec(item.version, item.weight, item.variant)
    if isinstance(item, str):
        return _spec_from_text(item)
    if isinstance(item, tuple) and len(item) in (2, 3):
        version, weight = _whole(item[0], "version", item), _whole(item[1], "weight", item)
        variant = item[2] if len(item) == 3 else None
        return RouteSpec(version, weight, None if variant is None else check_variant(variant))
    raise InvalidInput(f"invalid traffic split {item!r}: {_SPLIT_HELP}")


def parse_weights(weights: Mapping[int, int] | Iterable[object]) -> list[RouteSpec]:
    """A traffic split as route specs, checked: whole-number versions from 1, weights from
    0 to 100 that add up to exactly 100, each version once, variants distinct.

    Accepts ``{3: 90, 4: 10}``, ``["3=90", "4=10:canary"]``, ``[(3, 90), (4, 10, "canary")]``
    or :class:`Route` objects.

    Raises:
        InvalidInput: naming the values and how to write them.
    """
    if isinstance(weights, str):
        weights = weights.split()
    if isinstance(weights, Mapping):
        specs = [_spec((k, v)) for k, v in weights.items()]
    else:
        specs = [_spec(item) for item in weights]
    if not specs:
        raise InvalidInput(f"the traffic split is empty: {_SPLIT_HELP}")
    shown = " ".join(str(s) for s in specs)
    seen: set[int] = set()
    for s in specs:
        if not 1 <= s.version <= MAX_VERSION:
            raise InvalidInput(
                f"invalid version {s.version} in the traffic split {shown}: versions are "
                "whole numbers from 1"
            )
        if not 0 <= s.weight <= TOTAL_WEIGHT:
            raise InvalidInput(
                f"invalid weight {s.weight} for version {s.version} in the traffic split "
                f"{shown}: weights are whole percentages from 0 to 100"
            )
        if s.version in seen:
            raise InvalidInput(f"version {s.version} appears twice in the traffic split {shown}")
        seen.add(s.version)
    total = sum(s.weight for s in specs)
    if total != TOTAL_WEIGHT:
        raise InvalidInput(
            f"the weights of the traffic split {shown} add up to {total}, not 100; "
            "give whole percentages that add up to 100, e.g. 3=90 4=10"
        )
    named = [s.variant for s in specs if s.variant]
    dup = next((v for v in named if named.count(v) > 1), None)
    if dup is not None:
        raise InvalidInput(f"variant {dup!r} names two routes in the traffic split {shown}")
    return specs


def check_shadows(shadows: Iterable[object], routes: Iterable[RouteSpec | Route]) -> list[int]:
    """Shadow versions, checked: whole numbers from 1, each once, none also routed."""
    if isinstance(shadows, str | bytes):
        raise InvalidInput(f"invalid shadows {shadows!r}: give a list of version numbers")
    out: list[int] = []
    routed = {r.version for r in routes}
    for value in shadows:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
            raise InvalidInput(f"invalid shadow version {value!r}: use a whole number from 1")
        if value in routed:
            raise InvalidInput(
                f"version {value} is both routed and shadowed; a shadow gets a copy of the "
                "traffic, so drop it from the split or from the shadows"
            )
        if value in out:
            raise InvalidInput(f"shadow version {value} is given twice")
        out.append(value)
    return out


def assign_variants(specs: list[RouteSpec], current: Iterable[Route] = ()) -> list[Route]:
    """Routes with every variant filled in.

    A variant the caller named is kept. A version already routed keeps its variant. The
    other, new versions are ``canary`` when there is one of them (and ``canary`` is free),
    else ``v<version>`` each.

    Raises:
        InvalidInput: when two routes end up with the same variant.
    """
    before = {r.version: r.variant for r in current}
    taken = {s.variant for s in specs if s.variant}
    variants: dict[int, str] = {}
    for s in specs:
        if s.variant:
            variants[s.version] = s.variant
        elif s.version in before and before[s.version] not in taken:
            variants[s.version] = before[s.version]
            taken.add(before[s.version])
    fresh = [s.version for s in specs if s.version not in variants]
    for version in fresh:
        single = len(fresh) == 1 and CANARY not in taken
        variants[version] = CANARY if single else f"v{version}"
    routes = [Route(s.version, s.weight, variants[s.version]) for s in specs]
    names = [r.variant for r in routes]
    dup = next((v for v in names if names.count(v) > 1), None)
    if dup is not None:
        shown = " ".join(f"{r.version}={r.weight}:{r.variant}" for r in routes)
        raise InvalidInput(
            f"variant {dup!r} would name two routes ({shown}); name them, e.g. 3=90:champion "
            "4=10:canary"
        )
    return routes
