from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from ctloop.errors import InvalidInput
from ctloop.serving.routing import (
    BUCKETS,
    Router,
    WeightedRoute,
    parse_sticky_key,
    sticky_key_from,
)


def split(champion: int, canary: int) -> list[WeightedRoute]:
    return [WeightedRoute(3, champion, "champion"), WeightedRoute(4, canary, "canary")]


KEYS = [f"user-{i}" for i in range(20_000)]


@pytest.mark.parametrize(("champion", "canary"), [(90, 10), (50, 50)])
def test_random_picks_follow_the_weights(champion: int, canary: int) -> None:
    router = Router(split(champion, canary), salt="s", rng=random.Random(7))
    n = 100_000
    counts = Counter(router.choose().variant for _ in range(n))
    # 5 standard deviations of a binomial share: fails only if the weights are wrong
    sd = (n * champion / 100 * canary / 100) ** 0.5
    assert abs(counts["champion"] - n * champion / 100) < 5 * sd
    assert counts["champion"] + counts["canary"] == n


def test_sticky_keys_follow_the_weights() -> None:
    router = Router(split(90, 10), salt="s")
    share = sum(router.choose(k).variant == "canary" for k in KEYS) / len(KEYS)
    assert 0.08 < share < 0.12


def test_choice_returns_version_and_variant() -> None:
    route = Router(split(0, 100), salt="s").choose("anyone")
    assert route == WeightedRoute(version=4, weight=100, variant="canary")


def test_bucket_is_blake2b_of_salt_and_key_mod_10000() -> None:
    router = Router(split(90, 10), salt="pepper")
    digest = hashlib.blake2b(b"pepper\x00alice", digest_size=8).digest()
    assert router.bucket("alice") == int.from_bytes(digest, "big") % 10_000
    assert router.choose("alice").variant == (
        "champion" if router.bucket("alice") < 9000 else "canary"
    )


def test_same_key_same_variant_across_routers_with_the_same_salt() -> None:
    first = Router(split(70, 30), salt="deploy-1", rng=random.Random(1))
    second = Router(split(70, 30), salt="deploy-1", rng=random.Random(2))
    picks = [first.choose(k).variant for k in KEYS[:2000]]
    assert picks == [first.choose(k).variant for k in KEYS[:2000]]
    assert picks == [second.choose(k).variant for k in KEYS[:2000]]
    assert set(picks) == {"champion", "canary"}


def test_another_salt_reshuffles_the_keys() -> None:
    a = Router(split(50, 50), salt="a")
    b = Router(split(50, 50), salt="b")
    moved = sum(a.choose(k).variant != b.choose(k).variant for k in KEYS)
    # independent 50/50 assignments disagree for about half the keys
    assert 0.45 < moved / len(KEYS) < 0.55


def test_shifting_weight_moves_only_the_buckets_that_changed_hands() -> None:
    before = Router(split(90, 10), salt="s")
    after = Router(split(80, 20), salt="s")
    moved_buckets = set()
    for key in KEYS:
        was, now = before.choose(key).variant, after.choose(key).variant
        bucket = before.bucket(key)
        assert bucket == after.bucket(key)
        if was != now:
            assert (was, now) == ("champion", "canary")
            moved_buckets.add(bucket)
        # exactly the keys in buckets 8000-8999 move, and all of them do
        assert (was != now) == (8000 <= bucket < 9000)
    assert moved_buckets  # the property was exercised, not vacuously true
    assert all(
        after.choose(k).variant == "canary" for k in KEYS if before.choose(k).variant == "canary"
    )


def test_every_bucket_maps_to_the_cumulative_weights() -> None:
    router = Router(
        [WeightedRoute(1, 25, "a"), WeightedRoute(2, 0, "b"), WeightedRoute(3, 75, "c")],
        salt="s",
    )
    owners = [router.route_for_bucket(b).variant for b in range(BUCKETS)]
    assert owners == ["a"] * 2500 + ["c"] * 7500


def test_weight_zero_routes_are_never_chosen() -> None:
    routes = [
        WeightedRoute(1, 0, "shadow"),
        WeightedRoute(2, 100, "champion"),
        WeightedRoute(3, 0, "old"),
    ]
    router = Router(routes, salt="s", rng=random.Random(3))
    assert {router.choose().variant for _ in range(20_000)} == {"champion"}
    assert {router.choose(k).variant for k in KEYS} == {"champion"}
    assert [r.variant for r in router.routes] == ["shadow", "champion", "old"]


def test_accepts_any_object_with_the_route_attributes() -> None:
    @dataclass
    class Target:  # stands in for the deployment entity's own route type
        version: int
        weight: int
        variant: str
        note: str = "extra fields are ignored"

    router = Router([Target(5, 60, "champion"), Target(6, 40, "canary")], salt="s")
    assert router.routes == (WeightedRoute(5, 60, "champion"), WeightedRoute(6, 40, "canary"))
    assert isinstance(router.choose("k"), WeightedRoute)


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([], "at least one route"),
        (split(90, 20), "sum to 100, got 110"),
        (split(90, 5), "sum to 100, got 95"),
        ([WeightedRoute(1, 120, "a"), WeightedRoute(2, -20, "b")], "outside 0–100"),
        ([WeightedRoute(1, 50, "a"), WeightedRoute(2, 50, "a")], "'a' appears twice"),
        ([WeightedRoute(1, 100, "")], "non-empty name"),
        ([WeightedRoute(1, 50.5, "a"), WeightedRoute(2, 49.5, "b")], "weight must be an integer"),  # type: ignore[arg-type]
        ([WeightedRoute("1", 100, "a")], "version must be an integer"),  # type: ignore[arg-type]
        ([WeightedRoute(1, True, "a")], "weight must be an integer"),
        ([object()], "lacks 'version'"),
    ],
)
def test_bad_routes_are_refused_with_a_reason(routes: list[object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Router(routes, salt="s")  # type: ignore[arg-type]


def test_bad_salt_key_or_bucket_are_refused() -> None:
    with pytest.raises(InvalidInput, match="salt must be a string"):
        Router(split(50, 50), salt=None)  # type: ignore[arg-type]
    router = Router(split(50, 50), salt="s")
    with pytest.raises(InvalidInput, match="sticky key must be a string"):
        router.choose(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="outside 0–9999"):
        router.route_for_bucket(10_000)


def test_header_key_is_looked_up_case_insensitively() -> None:
    headers = {"x-user-id": "u-17", "Content-Type": "application/json"}
    assert sticky_key_from("header:X-User-Id", headers, None) == "u-17"
    assert sticky_key_from("header:content-type", headers, None) == "application/json"
    assert sticky_key_from("header:X-Missing", headers, None) is None
    assert sticky_key_from("header:x-user-id", {"X-User-Id": ""}, None) is None
    assert Router.sticky_key_from("header:X-USER-ID", headers, None) == "u-17"


def test_field_key_comes_from_the_first_record() -> None:
    record = {"customer_id": 1042, "amount": 3.5, "segment": None}
    assert sticky_key_from("field:customer_id", {}, record) == "1042"
    assert sticky_key_from("field:segment", {}, record) is None
    assert sticky_key_from("field:missing", {}, record) is None
    assert sticky_key_from("field:customer_id", {}, None) is None
    assert sticky_key_from(None, {"X-User-Id": "u"}, record) is None


def test_same_field_value_routes_the_same_as_same_header_value() -> None:
    router = Router(split(50, 50), salt="s")
    from_field = sticky_key_from("field:customer_id", {}, {"customer_id": 77})
    from_header = sticky_key_from("header:X-Customer", {"X-Customer": "77"}, None)
    assert from_field == from_header == "77"
    assert router.choose(from_field) == router.choose(from_header)


@pytest.mark.parametrize("spec", ["user_id", "cookie:sid", "header:", "field:  ", ":x", ""])
def test_malformed_sticky_specs_are_refused(spec: str) -> None:
    with pytest.raises(InvalidInput, match="header:<header name>"):
        sticky_key_from(spec, {}, None)


def test_parse_sticky_key() -> None:
    assert parse_sticky_key("header:X-User-Id") == ("header", "X-User-Id")
    assert parse_sticky_key("FIELD: customer_id") == ("field", "customer_id")
