"""The numeric fast path of request validation gives what the signature's own check gives."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctloop.models.signature import infer_signature
from ctloop.serving.protocols import RequestInvalid, parse_plain
from ctloop.serving.protocols._common import validated_frame

SIGNATURE = infer_signature(
    pd.DataFrame({"age": [22, 35], "spend": [9.5, 20.0], "member": [True, False]})
)
MIXED = infer_signature(
    pd.DataFrame(
        {
            "age": [22, None],  # a nullable integer column (float in the frame)
            "spend": [9.5, None],
            "plan": pd.Series(["basic", "pro"], dtype="category"),
            "city": ["Oslo", None],
        }
    )
)
FLOATS = infer_signature(pd.DataFrame({"a": [1.0], "b": [2.0]}))

numbers = st.one_of(st.integers(-(2**62), 2**62), st.floats(allow_nan=False, allow_infinity=False))
cell = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=3))


def _slow(columns: dict[str, list[Any]], signature: Any) -> pd.DataFrame | None:
    try:
        return signature.validate(pd.DataFrame(columns))
    except Exception:
        return None


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(cell, cell, cell), min_size=1, max_size=5))
def test_the_fast_path_agrees_with_the_signature_check(rows: list[tuple[Any, Any, Any]]) -> None:
    columns = {
        "age": [r[0] for r in rows],
        "spend": [r[1] for r in rows],
        "member": [r[2] for r in rows],
    }
    try:
        frame, values = validated_frame(
            columns, len(rows), SIGNATURE, [], allow_extra_columns=False
        )
    except RequestInvalid:
        assert _slow(columns, SIGNATURE) is None or any(
            v is None for col in columns.values() for v in col
        )
        return
    expected = SIGNATURE.validate(pd.DataFrame(columns, dtype=object).infer_objects())
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected.reset_index(drop=True))
    if values is not None:  # the fast path's lists are the frame's values
        assert values == {c: frame[c].tolist() for c in frame.columns}


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.integers(-100, 100), st.none(), st.floats(allow_nan=False)),
            st.one_of(numbers, st.none()),
            st.one_of(st.sampled_from(["basic", "pro", "gold"]), st.none(), st.integers(0, 2)),
            st.one_of(st.text(max_size=3), st.none(), st.integers(0, 2)),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_the_fast_path_agrees_on_nullable_strings_and_categories(rows: list[Any]) -> None:
    names = ["age", "spend", "plan", "city"]
    columns = {name: [r[i] for r in rows] for i, name in enumerate(names)}
    expected = _slow_or_problems(columns, MIXED)
    try:
        frame, values = validated_frame(columns, len(rows), MIXED, [], allow_extra_columns=False)
    except RequestInvalid:
        assert expected is None
        return
    assert expected is not None
    pd.testing.assert_frame_equal(frame, expected)
    if values is not None:
        for name in names:
            got = [None if pd.isna(v) else v for v in frame[name].astype(object).tolist()]
            logged = [
                v if v is None or name not in ("plan",) or v in ("basic", "pro") else None
                for v in values[name]
            ]
            if name == "plan":
                assert got == logged
            else:
                assert got == values[name]


def _slow_or_problems(columns: dict[str, list[Any]], signature: Any) -> pd.DataFrame | None:
    from ctloop.serving.protocols._common import frame_from_columns, validated

    try:
        return validated(
            frame_from_columns(columns, len(next(iter(columns.values())))),
            signature,
            [],
            allow_extra_columns=False,
        )
    except RequestInvalid:
        return None


def test_an_all_float_request_takes_the_fast_path_and_logs_typed_values() -> None:
    parsed = parse_plain({"instances": [{"a": 1, "b": 2.5}]}, FLOATS, max_rows=10)
    assert parsed.values == {"a": [1.0], "b": [2.5]}
    assert list(parsed.frame.dtypes) == ["float64", "float64"]


@pytest.mark.parametrize(
    "record",
    [{"a": True, "b": 1.0}, {"a": "1", "b": 1.0}, {"a": None, "b": 1.0}, {"a": 2**70, "b": 1.0}],
)
def test_what_the_fast_path_refuses_the_general_path_reports(record: dict[str, Any]) -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_plain({"instances": [record]}, FLOATS, max_rows=10)
    assert any("'a'" in p or "64 bits" in p for p in caught.value.problems)
