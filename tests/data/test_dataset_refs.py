"""Parsing dataset references: NAME, NAME@latest, NAME@N."""

from __future__ import annotations

import pytest

from ctloop.data.refs import DatasetRef, parse_ref
from ctloop.errors import InvalidInput


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("churn", DatasetRef("churn", None)),
        ("churn@latest", DatasetRef("churn", None)),
        ("churn@3", DatasetRef("churn", 3)),
        ("churn.v2-final_x@12", DatasetRef("churn.v2-final_x", 12)),
    ],
)
def test_parse_ref_accepts_the_three_forms(value: str, expected: DatasetRef) -> None:
    assert parse_ref(value) == expected


def test_ref_prints_back_as_name_at_version() -> None:
    assert str(parse_ref("churn")) == "churn@latest"
    assert str(parse_ref("churn@4")) == "churn@4"
    assert parse_ref("churn").is_latest and not parse_ref("churn@4").is_latest


@pytest.mark.parametrize(
    "value",
    ["", "  ", "@3", "churn@", "churn@0", "churn@-1", "churn@x", "churn@1.5", "a@1@2",
     "churn@LATEST", "bad name@1", "churn@٣"],
)  # fmt: skip
def test_parse_ref_rejects_bad_references_naming_the_value(value: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_ref(value)
    assert repr(value) in str(err.value)


def test_parse_ref_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput, match="invalid dataset reference 3"):
        parse_ref(3)
