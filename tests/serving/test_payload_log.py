"""The payload log writer: flush policy, partitions, drops, threads, SIGTERM, S3."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ctloop.errors import InvalidInput
from ctloop.serving.payload_log import PayloadLog, install_sigterm_flush


def segments(root: Path, kind: str = "predictions", deployment: str = "churn") -> list[str]:
    return sorted(glob.glob(str(root / "logs" / deployment / kind / "date=*" / "*.parquet")))


def wait_for(check: Callable[[], bool], what: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def rows(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"prediction_id": f"p{i}", "features": {"age": i}, "prediction": i % 2, **extra}
        for i in range(start, start + n)
    ]


def test_flush_by_rows_writes_one_segment(tmp_path: Path) -> None:
    log = PayloadLog(
        str(tmp_path), "churn", "predictions", replica="r1", flush_rows=5, flush_seconds=3600
    )
    try:
        log.append(rows(4))
        time.sleep(0.05)
        assert segments(tmp_path) == []  # below the threshold, nothing yet
        log.append(rows(1, start=4))
        wait_for(lambda: len(segments(tmp_path)) == 1, "a segment after 5 rows")
        wait_for(lambda: log.rows_written == 5, "the counter")
        assert log.queue_depth == 0
        (path,) = segments(tmp_path)
        assert os.path.basename(path).startswith("r1-")
        table = pq.read_table(path)
        assert table.num_rows == 5
        assert table.column("f.age").to_pylist() == [0, 1, 2, 3, 4]
    finally:
        log.close()


def test_flush_by_time(tmp_path: Path) -> None:
    log = PayloadLog(str(tmp_path), "churn", "predictions", replica="r1", flush_seconds=0.05)
    try:
        log.append(rows(3))
        wait_for(lambda: len(segments(tmp_path)) == 1, "a segment after flush_seconds")
        assert pq.read_table(segments(tmp_path)[0]).num_rows == 3
    finally:
        log.close()


def test_rows_are_partitioned_by_the_date_of_their_timestamp(tmp_path: Path) -> None:
    log = PayloadLog(str(tmp_path), "churn", "predictions", replica="r1", flush_seconds=3600)
    log.append(
        [
            {"prediction_id": "a", "timestamp": datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)},
            {"prediction_id": "b", "timestamp": "2026-03-02T00:00:00+00:00"},
            {"prediction_id": "c", "timestamp": datetime(2026, 3, 2, 0, 30)},  # naive = UTC
        ]
    )
    log.close()
    found = {Path(p).parent.name: pq.read_table(p) for p in segments(tmp_path)}
    assert sorted(found) == ["date=2026-03-01", "date=2026-03-02"]
    assert found["date=2026-03-01"].column("prediction_id").to_pylist() == ["a"]
    assert found["date=2026-03-02"].column("prediction_id").to_pylist() == ["b", "c"]


def test_rows_past_max_queue_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    log = PayloadLog(
        str(tmp_path),
        "churn",
        "predictions",
        replica="r1",
        flush_rows=1000,
        flush_seconds=3600,
        max_queue_rows=10,
    )
    assert log.append(rows(7)) == 7
    assert log.append(rows(7, start=7)) == 3
    assert log.append(rows(2, start=14)) == 0
    assert (log.queue_depth, log.rows_dropped) == (10, 6)
    log.close()
    assert log.rows_written == 10
    (path,) = segments(tmp_path)
    assert pq.read_table(path).column("prediction_id").to_pylist() == [f"p{i}" for i in range(10)]


def test_close_flushes_and_is_idempotent(tmp_path: Path) -> None:
    log = PayloadLog(str(tmp_path), "churn", "feedback", replica="r1", flush_seconds=3600)
    log.append([{"prediction_id": "p1", "label": "yes"}])
    log.append(pd.DataFrame({"prediction_id": ["p2"], "value": [2.5]}))
    log.close()
    log.close()
    assert log.rows_written == 2
    (path,) = segments(tmp_path, "feedback")
    table = pq.read_table(path)
    assert table.column("label").to_pylist() == ["yes", None]
    assert table.column("value").to_pylist() == [None, 2.5]
    assert log.append([{"prediction_id": "late"}]) == 0
    assert log.rows_dropped == 1


def test_columns_and_types(tmp_path: Path) -> None:
    with PayloadLog(str(tmp_path), "churn", "predictions", replica="r1") as log:
        log.append(
            [
                {
                    "request_id": "req-1",
                    "model_version": 3,
                    "variant": "champion",
                    "features": {"age": 41, "plan": "pro"},
                    "probabilities": {"no": 0.25, "yes": 0.75},
                    "prediction": "yes",
                    "latency_ms": 3,
                    "status": "ok",
                }
            ]
        )
    table = pq.read_table(segments(tmp_path)[0])
    row = table.to_pylist()[0]
    assert len(row["prediction_id"]) == 32  # generated when the caller gave none
    assert row["deployment"] == "churn"
    assert row["model_version"] == "3"
    assert row["f.age"] == 41 and row["f.plan"] == "pro"
    assert row["p.no"] == 0.25 and row["p.yes"] == 0.75
    assert row["latency_ms"] == 3.0
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"


def test_concurrent_appenders_lose_nothing(tmp_path: Path) -> None:
    log = PayloadLog(
        str(tmp_path), "churn", "predictions", replica="r1", flush_rows=50, flush_seconds=0.01
    )
    threads = [
        threading.Thread(
            target=lambda t=t: [log.append(rows(1, start=t * 1000 + i)) for i in range(500)]
        )
        for t in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    ids = [i for p in segments(tmp_path) for i in pq.read_table(p).column("prediction_id")]
    assert len(ids) == 4000
    assert {str(i) for i in ids} == {f"p{t * 1000 + i}" for t in range(8) for i in range(500)}
    assert (log.rows_written, log.rows_dropped, log.queue_depth) == (4000, 0, 0)
    assert len(segments(tmp_path)) > 1  # it flushed while the threads ran


def test_bad_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="deployment"):
        PayloadLog(str(tmp_path), "../x", "predictions", replica="r1")
    with pytest.raises(InvalidInput, match="kind"):
        PayloadLog(str(tmp_path), "churn", "labels", replica="r1")  # type: ignore[arg-type]


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    with PayloadLog(str(tmp_path), "churn", "predictions", replica="r1") as log:
        log.append(rows(3))
    folder = Path(segments(tmp_path)[0]).parent
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".parquet")] == []


def test_install_sigterm_flush_calls_the_previous_handler(tmp_path: Path) -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        log = PayloadLog(str(tmp_path), "churn", "predictions", replica="r1", flush_seconds=3600)
        install_sigterm_flush(log)
        log.append(rows(2))
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(lambda: seen == [signal.SIGTERM], "the previous handler")
        assert log.rows_written == 2
        assert len(segments(tmp_path)) == 1
    finally:
        signal.signal(signal.SIGTERM, previous)


_CHILD = textwrap.dedent(
    """
    import sys, time
    from ctloop.serving.payload_log import PayloadLog, install_sigterm_flush

    log = PayloadLog(sys.argv[1], "churn", "predictions", replica="child",
                     flush_rows=10**6, flush_seconds=3600)
    install_sigterm_flush(log)
    i = 0
    while True:
        log.append([{"prediction_id": f"p{i}"}])
        if i == 99:
            print("ready", flush=True)
        i += 1
        time.sleep(0.001)
    """
)


def test_sigterm_flushes_then_exits_as_sigterm(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        assert segments(tmp_path) == []  # nothing flushed yet: thresholds are far away
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    ids = [str(i) for p in segments(tmp_path) for i in pq.read_table(p).column("prediction_id")]
    assert len(ids) >= 100
    assert ids == [f"p{i}" for i in range(len(ids))]  # every appended row, in order


@pytest.mark.s3
def test_segments_on_s3(s3_endpoint: str, s3_bucket: str) -> None:
    import s3fs

    options = {"client_kwargs": {"endpoint_url": s3_endpoint}}
    root = f"{s3_bucket}/store"
    log = PayloadLog(
        root,
        "churn",
        "predictions",
        replica="r1",
        flush_rows=3,
        flush_seconds=3600,
        storage_options=options,
    )
    fs = s3fs.S3FileSystem(**options)

    def listed() -> list[str]:
        fs.invalidate_cache()
        return sorted(fs.glob(f"{root}/logs/churn/predictions/date=*/*.parquet"))

    try:
        log.append(rows(3, timestamp=datetime(2026, 3, 1, 12, tzinfo=UTC)))
        wait_for(lambda: len(listed()) == 1, "a segment on S3")
        log.append(rows(1, start=3, timestamp=datetime(2026, 3, 2, 12, tzinfo=UTC)))
    finally:
        log.close()
    found = listed()
    assert [p.split("/")[-2] for p in found] == ["date=2026-03-01", "date=2026-03-02"]
    assert pq.read_table(found[0], filesystem=fs).num_rows == 3


def test_a_bad_row_is_dropped_without_blocking_the_rest(tmp_path: Path) -> None:
    log = PayloadLog(str(tmp_path), "churn", "predictions", replica="r1", flush_seconds=3600)
    log.append([{"prediction_id": "good"}, {"prediction_id": "bad", "timestamp": object()}])
    log.append(pd.DataFrame({"prediction_id": ["x", "y"], "timestamp": [pd.NaT, pd.Timestamp(0)]}))
    log.close()
    assert (log.rows_written, log.rows_dropped, log.queue_depth) == (3, 1, 0)
    ids = sorted(str(i) for p in segments(tmp_path) for i in pq.read_table(p)["prediction_id"])
    assert ids == ["good", "x", "y"]
    with pytest.raises(InvalidInput, match="list of rows"):
        log.append({"prediction_id": "z"})  # type: ignore[arg-type]


def test_an_integer_past_64_bits_is_kept_as_text_and_blocks_nothing(tmp_path: Path) -> None:
    from ctloop.serving.log_reader import read_log

    with PayloadLog(str(tmp_path), "api", "feedback", replica="r") as log:
        log.append([{"prediction_id": "a", "label": 2**64 - 1}, {"prediction_id": "b", "label": 1}])
    assert log.rows_written == 2 and log.rows_dropped == 0
    frame = read_log(str(tmp_path), "api", "feedback")
    assert sorted(frame["label"].astype(str)) == ["1", str(2**64 - 1)]


def test_columns_and_rows_share_a_segment_and_read_back_alike(tmp_path: Path) -> None:
    from ctloop.serving.log_reader import read_log

    with PayloadLog(str(tmp_path), "api", "predictions", replica="r") as log:
        log.append_columns(
            {
                "prediction_id": ["a", "b"],
                "prediction": [1, 0],
                "f.age": [41, 52],
                "p.1": [0.9, 0.2],
            },
            2,
        )
        log.append([{"prediction_id": "c", "prediction": 1, "features": {"age": 30.5}}])
        log.flush()
        assert log.segments_written == 1 and log.rows_written == 3
    frame = read_log(str(tmp_path), "api", "predictions")
    assert sorted(frame["prediction_id"]) == ["a", "b", "c"]
    by_id = frame.set_index("prediction_id")
    assert by_id.loc["a", "f.age"] == 41 and by_id.loc["c", "f.age"] == 30.5
    assert by_id.loc["b", "p.1"] == 0.2 and by_id["p.1"].isna().sum() == 1
    assert set(by_id["deployment"]) == {"api"}
    assert by_id["timestamp"].notna().all()


def test_columns_whose_types_cannot_be_joined_go_to_separate_segments(tmp_path: Path) -> None:
    from ctloop.serving.log_reader import read_log

    with PayloadLog(str(tmp_path), "api", "predictions", replica="r") as log:
        log.append_columns({"prediction_id": ["a"], "prediction": [1]}, 1)
        log.append_columns({"prediction_id": ["b"], "prediction": ["yes"], "f.x": [1.0]}, 1)
        log.flush()
        assert log.rows_written == 2 and log.segments_written >= 1
    frame = read_log(str(tmp_path), "api", "predictions")
    assert sorted(frame["prediction_id"]) == ["a", "b"]


def test_columns_of_unequal_length_or_past_the_queue_are_refused_or_counted(
    tmp_path: Path,
) -> None:
    from ctloop.errors import InvalidInput

    with PayloadLog(str(tmp_path), "api", "predictions", replica="r", max_queue_rows=2) as log:
        with pytest.raises(InvalidInput, match="2 values"):
            log.append_columns({"prediction_id": ["a"], "prediction": [1, 2]}, 2)
        assert log.append_columns({"prediction_id": ["a", "b"]}, 2) == 2
        assert log.append_columns({"prediction_id": ["c"]}, 1) == 0
        assert log.rows_dropped == 1


def test_columns_appended_either_side_of_midnight_go_to_two_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctloop.serving import payload_log
    from ctloop.serving.log_reader import read_log

    midnight = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    clock = iter([midnight - 0.5, midnight - 0.25, midnight + 0.25])
    monkeypatch.setattr(payload_log.time, "time", lambda: next(clock))
    with PayloadLog(str(tmp_path), "api", "predictions", replica="r", flush_seconds=60) as log:
        for pid in ("a", "b", "c"):  # one block: same column names
            log.append_columns({"prediction_id": [pid], "prediction": [1]}, 1)
        monkeypatch.undo()
        log.flush()
    folders = sorted(
        os.path.basename(os.path.dirname(p)) for p in segments(tmp_path, "predictions", "api")
    )
    assert folders == ["date=2026-03-01", "date=2026-03-02"]
    frame = read_log(str(tmp_path), "api", "predictions").set_index("prediction_id")
    assert frame.loc["a", "timestamp"] == pd.Timestamp(midnight - 0.5, unit="s", tz="UTC")
    assert frame.loc["c", "timestamp"].date().isoformat() == "2026-03-02"


def test_a_failed_flush_keeps_columnar_rows_in_order_for_the_next(tmp_path: Path) -> None:
    from ctloop.serving.log_reader import read_log

    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log folder should be")
    log = PayloadLog(str(tmp_path), "api", "predictions", replica="r", flush_seconds=60)
    log.append_columns({"prediction_id": ["a", "b"], "prediction": [1, 0]}, 2)
    with pytest.raises(OSError):
        log.flush()
    log.append_columns({"prediction_id": ["c"], "prediction": [1]}, 1)
    assert log.queue_depth == 3
    blocker.unlink()
    assert log.flush() == 3
    log.close()
    frame = read_log(str(tmp_path), "api", "predictions")
    assert list(frame.sort_values("timestamp", kind="stable")["prediction_id"]) == ["a", "b", "c"]
    assert log.queue_depth == 0 and log.rows_dropped == 0


def test_text_columns_keep_non_text_values_as_text(tmp_path: Path) -> None:
    from ctloop.serving.log_reader import read_log

    with PayloadLog(str(tmp_path), "api", "predictions", replica="r") as log:
        log.append_columns({"prediction_id": ["a"], "request_id": [7], "prediction": [1]}, 1)
        log.append_columns({"prediction_id": ["b"], "request_id": [None], "prediction": [0]}, 1)
    frame = read_log(str(tmp_path), "api", "predictions").set_index("prediction_id")
    assert frame.loc["a", "request_id"] == "7" and pd.isna(frame.loc["b", "request_id"])
