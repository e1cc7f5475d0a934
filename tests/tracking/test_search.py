"""The run filter language itself: tokens, errors, quoting (the search on every backend is
in tests/contract/test_search_contract.py)."""

from __future__ import annotations

import pytest

from ctloop.errors import InvalidInput
from ctloop.store.filters import parse_filter, parse_order_by


@pytest.mark.parametrize(
    ("text", "token", "position"),
    [
        ("metrics.auc foo 0.8", "foo", 13),
        ("metrics.auc > 'high'", "'high'", 15),
        ("nonsense.auc > 1", "nonsense", 1),
        ("metrics.auc > 0.8 or params.x = 'y'", "or", 19),
        ("params.model > 'rf'", ">", 14),
        ("params.model IN 'rf'", "'rf'", 17),
        ("colour = 'red'", "colour", 1),
    ],
)
def test_malformed_filter_points_at_the_bad_token(text: str, token: str, position: int) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    assert info.value.token == token  # type: ignore[attr-defined]
    assert f"at character {position}" in str(info.value)
    assert repr(text) in str(info.value) or text in str(info.value)


def test_truncated_filter_says_what_was_expected() -> None:
    with pytest.raises(InvalidInput, match="expected a number at the end"):
        parse_filter("metrics.auc >")


def test_quoted_keys_and_dotted_keys() -> None:
    (c1,) = parse_filter("metrics.`val auc` < 1")
    assert c1.key == "val auc"
    (c2,) = parse_filter("metrics.val.auc < 1")
    assert c2.key == "val.auc"
    (c3,) = parse_filter("params.\"my param\" = 'it''s'")
    assert (c3.key, c3.value) == ("my param", "it's")


def test_order_by_errors() -> None:
    with pytest.raises(InvalidInput, match="ASC or DESC"):
        parse_order_by(["metrics.auc SIDEWAYS"])
    assert parse_order_by("start_time")[0].key == "start_time"
