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
FLOATS = infer_signature(pd.DataFrame({"a": [1.0], "b": [2.0]}))

numbers = st.one_of(
    st.integers(-(2**62), 2**62), st.floats(allow_nan=False, allow_infinity=False)
)
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
