"""Reading the logs back: schema union, time filters, the joined view, empty logs, S3."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ctloop.errors import InvalidInput
from ctloop.serving.log_reader import joined, read_log
from ctloop.serving.payload_log import FEEDBACK_COLUMNS, PREDICTION_COLUMNS, PayloadLog


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def write(root: str, kind: str, rows: list[dict[str, Any]], **options: Any) -> None:
    """One segment (per date) of ``rows``, written and closed."""
    with PayloadLog(root, "churn", kind, replica="r1", **options) as log:  # type: ignore[arg-type]
        log.append(rows)


def test_segments_with_different_columns_are_unioned(tmp_path: Path) -> None:
    root = str(tmp_path)
    write(
        root, "predictions", [{"prediction_id": "a", "timestamp": at(1), "features": {"age": 30}}]
    )
    write(
        root,
        "predictions",
        [{"prediction_id": "b", "timestamp": at(2), "features": {"age": 40.5, "plan": "pro"}}],
    )
    df = read_log(root, "churn", "predictions")
    assert list(df.columns) == [*PREDICTION_COLUMNS, "f.age", "f.plan"]
    assert df["prediction_id"].tolist() == ["a", "b"]
    assert df["f.age"].tolist() == [30.0, 40.5]
    assert df["f.plan"].isna().tolist() == [True, False]
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"


def test_since_includes_and_until_excludes(tmp_path: Path) -> None:
    root = str(tmp_path)
    moments = [at(1, 23, 59), at(2, 0, 0), at(2, 12), at(3, 0, 0), at(3, 8)]
    write(
        root,
        "predictions",
        [{"prediction_id": f"p{i}", "timestamp": t} for i, t in enumerate(moments)],
    )

    def ids(**kw: Any) -> list[str]:
        return read_log(root, "churn", "predictions", **kw)["prediction_id"].tolist()

    assert ids() == ["p0", "p1", "p2", "p3", "p4"]
    assert ids(since=at(2, 0, 0), until=at(3, 0, 0)) == ["p1", "p2"]
    assert ids(since="2026-03-02T12:00:00") == ["p2", "p3", "p4"]  # naive = UTC
    assert ids(until=date(2026, 3, 2)) == ["p0"]
    assert ids(since=at(4)) == []
    with pytest.raises(InvalidInput, match="since"):
        ids(since="yesterday")


def test_empty_log_has_the_documented_columns(tmp_path: Path) -> None:
    preds = read_log(str(tmp_path), "churn", "predictions")
    feedback = read_log(str(tmp_path), "churn", "feedback")
    view = joined(str(tmp_path), "churn")
    assert (len(preds), len(feedback), len(view)) == (0, 0, 0)
    assert list(preds.columns) == list(PREDICTION_COLUMNS)
    assert list(feedback.columns) == list(FEEDBACK_COLUMNS)
    assert list(view.columns) == [*PREDICTION_COLUMNS, "label", "value", "feedback_time"]


def test_joined_takes_the_latest_feedback(tmp_path: Path) -> None:
    root = str(tmp_path)
    write(
        root,
        "predictions",
        [
            {"prediction_id": "a", "timestamp": at(1), "prediction": "yes"},
            {"prediction_id": "b", "timestamp": at(1, 13), "prediction": "no"},
            {"prediction_id": "c", "timestamp": at(2), "prediction": "no"},
        ],
    )
    # the later correction comes first in the file: the timestamp decides, not the order
    write(
        root,
        "feedback",
        [
            {"prediction_id": "a", "label": "no", "timestamp": at(3)},
            {"prediction_id": "a", "label": "yes", "timestamp": at(2)},
            {"prediction_id": "b", "label": "no", "timestamp": at(1, 14)},
            {"prediction_id": "zzz", "label": "no", "timestamp": at(1, 14)},  # unknown id
        ],
    )
    view = joined(root, "churn").set_index("prediction_id")
    assert view.index.tolist() == ["a", "b", "c"]
    assert view.loc["a", "label"] == "no"
    assert view.loc["a", "feedback_time"] == pd.Timestamp(at(3))
    assert view.loc["b", "label"] == "no"
    assert view[["label", "feedback_time"]].loc["c"].isna().all()
    only_c = joined(root, "churn", since=at(2))
    assert only_c["prediction_id"].tolist() == ["c"]


def test_equal_timestamps_keep_the_order_of_writing(tmp_path: Path) -> None:
    root = str(tmp_path)
    write(root, "predictions", [{"prediction_id": "a", "timestamp": at(1)}])
    write(root, "feedback", [{"prediction_id": "a", "value": 1.0, "timestamp": at(2)}])
    write(root, "feedback", [{"prediction_id": "a", "value": 2.0, "timestamp": at(2)}])
    assert joined(root, "churn")["value"].tolist() == [2.0]


def test_unknown_kind_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="kind"):
        read_log(str(tmp_path), "churn", "labels")


@pytest.mark.s3
def test_read_and_join_on_s3(s3_endpoint: str, s3_bucket: str) -> None:
    options = {"client_kwargs": {"endpoint_url": s3_endpoint}}
    root = f"{s3_bucket}/store"
    write(
        root,
        "predictions",
        [{"prediction_id": "a", "timestamp": at(1), "features": {"age": 30}}],
        storage_options=options,
    )
    write(
        root,
        "predictions",
        [{"prediction_id": "b", "timestamp": at(2), "features": {"age": 31, "plan": "pro"}}],
        storage_options=options,
    )
    write(
        root,
        "feedback",
        [{"prediction_id": "b", "label": "yes", "timestamp": at(3)}],
        storage_options=options,
    )
    df = read_log(root, "churn", "predictions", storage_options=options)
    assert df["prediction_id"].tolist() == ["a", "b"]
    assert df["f.plan"].isna().tolist() == [True, False]
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"
    later = read_log(root, "churn", "predictions", since=at(2), storage_options=options)
    assert later["prediction_id"].tolist() == ["b"]
    view = joined(root, "churn", storage_options=options)
    assert view["label"].tolist()[1] == "yes" and pd.isna(view["label"].tolist()[0])
    assert read_log(root, "other", "feedback", storage_options=options).empty
