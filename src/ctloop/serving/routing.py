"""Weighted routing of requests between the model versions of a deployment.

Each route owns a share of 10 000 buckets, in the order the routes are given: with
weights 90/10 the champion owns buckets 0–8999 and the canary 9000–9999. A request with
a sticky key lands in bucket ``blake2b(salt ‖ "\\0" ‖ key) mod 10000``, so the same key
always reaches the same version while the weights stay the same; a request without one
lands in a uniformly random bucket. Because shares are cut from one ordered line,
shifting weight between neighbouring routes moves only the keys in the buckets that
changed hands (90/10 → 80/20 moves buckets 8000–8999 and nothing else).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ctloop.errors import InvalidInput

__all__ = [
    "BUCKETS",
    "RouteLike",
    "Router",
    "WeightedRoute",
    "parse_sticky_key",
    "sticky_key_from",
]

BUCKETS = 10_000
_PER_PERCENT = BUCKETS // 100


class RouteLike(Protocol):
    """Anything with a version, a weight in percent and a variant name."""

    @property
    def version(self) -> int: ...

    @property
    def weight(self) -> int: ...

    @property
    def variant(self) -> str: ...


@dataclass(frozen=True)
class WeightedRoute:
    """One target of a deployment: a model version, its share in percent, its role."""

    version: int
    weight: int
    variant: str


class Router:
    """Picks the route of each request by weight, stickily when the request has a key.

    Args:
        routes: the routes, weights in whole percent summing to 100. A route of weight
            0 is kept (it is part of the deployment) but never chosen.
        salt: mixed into the hash of sticky keys; a new salt reshuffles who gets what.
        rng: the source of random buckets for requests without a key.

    Raises:
        InvalidInput: no routes, a weight outside 0–100, weights not summing to 100, a
            non-integer version or an empty or repeated variant name.
    """

    def __init__(
        self,
        routes: Sequence[RouteLike],
        *,
        salt: str,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(salt, str):
            raise InvalidInput(f"the routing salt must be a string, got {salt!r}")
        self._routes = tuple(_route(r) for r in routes)
        _check(self._routes)
        self._salt = salt
        self._rng = rng if rng is not None else random.Random()
        ends: list[int] = []
        total = 0
        for route in self._routes:
            total += route.weight * _PER_PERCENT
            ends.append(total)
        self._ends = tuple(ends)

    @property
    def routes(self) -> tuple[WeightedRoute, ...]:
        """The routes, in bucket order."""
        return self._routes

    @property
    def salt(self) -> str:
        return self._salt

    def bucket(self, key: str) -> int:
        """The bucket (0–9999) a sticky key lands in under this router's salt."""
        digest = hashlib.blake2b(f"{self._salt}\0{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % BUCKETS

    def route_for_bucket(self, bucket: int) -> WeightedRoute:
        """The route owning ``bucket``."""
        if not 0 <= bucket < BUCKETS:
            raise InvalidInput(f"bucket {bucket} is outside 0–{BUCKETS - 1}")
        for route, end in zip(self._routes, self._ends, strict=True):
            if bucket < end:
                return route
        raise AssertionError("the weights sum to 100, so the last end is BUCKETS")

    def choose(self, key: str | None = None) -> WeightedRoute:
        """The route for a request: by the key's bucket, or at random without a key."""
        if key is None:
            return self.route_for_bucket(self._rng.randrange(BUCKETS))
        if not isinstance(key, str):
            raise InvalidInput(f"a sticky key must be a string, got {key!r}")
        return self.route_for_bucket(self.bucket(key))

    @staticmethod
    def sticky_key_from(
        spec: str | None,
        headers: Mapping[str, str],
        record: Mapping[str, Any] | None,
    ) -> str | None:
        """The sticky key of a request; see the module function :func:`sticky_key_from`."""
        return sticky_key_from(spec, headers, record)


def parse_sticky_key(spec: str) -> tuple[Literal["header", "field"], str]:
    """Split a sticky-key spec, ``header:<name>`` or ``field:<column>``, into its parts.

    Raises:
        InvalidInput: the spec has another form.
    """
    source, sep, name = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    name = name.strip()
    source = source.strip().lower()
    if not sep or not name or source not in ("header", "field"):
        raise InvalidInput(
            f"sticky key spec {spec!r} is not understood; "
            "use 'header:<header name>' (e.g. header:X-User-Id) or "
            "'field:<column>' (e.g. field:customer_id)"
        )
    return ("header" if source == "header" else "field"), name


def sticky_key_from(
    spec: str | None,
    headers: Mapping[str, str],
    record: Mapping[str, Any] | None,
) -> str | None:
    """The sticky key of a request, or None when there is no spec or the value is absent.

    Args:
        spec: ``header:<name>`` (looked up case-insensitively) or ``field:<column>``
            (read from the request's first record); None means no stickiness.
        headers: the request's headers.
        record: the request's first record, if it has one.

    Raises:
        InvalidInput: the spec is malformed.
    """
    if spec is None:
        return None
    source, name = parse_sticky_key(spec)
    value: Any
    if source == "header":
        value = headers.get(name)
        if value is None:
            wanted = name.lower()
            value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    else:
        value = None if record is None else record.get(name)
    if value is None:
        return None
    key = value if isinstance(value, str) else str(value)
    # An empty key would pin every such request to one bucket; treat it as no key.
    return key or None


def _route(route: RouteLike) -> WeightedRoute:
    try:
        version, weight, variant = route.version, route.weight, route.variant
    except AttributeError as exc:
        raise InvalidInput(
            f"a route needs version, weight and variant; {route!r} lacks {exc.name!r}"
        ) from exc
    for label, value in (("version", version), ("weight", weight)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"route {variant!r}: {label} must be an integer, got {value!r}")
    if not isinstance(variant, str) or not variant:
        raise InvalidInput(f"a route's variant must be a non-empty name, got {variant!r}")
    if not 0 <= weight <= 100:
        raise InvalidInput(
            f"route {variant!r}: weight {weight} is outside 0–100 (weights are percent)"
        )
    return route if isinstance(route, WeightedRoute) else WeightedRoute(version, weight, variant)


def _check(routes: tuple[WeightedRoute, ...]) -> None:
    if not routes:
        raise InvalidInput("a router needs at least one route")
    seen: set[str] = set()
    for route in routes:
        if route.variant in seen:
            raise InvalidInput(f"variant {route.variant!r} appears twice; names must be unique")
        seen.add(route.variant)
    total = sum(r.weight for r in routes)
    if total != 100:
        shares = ", ".join(f"{r.variant}={r.weight}" for r in routes)
        raise InvalidInput(f"route weights must sum to 100, got {total} ({shares})")
