"""Replica status files: freshness, and the histogram quantile the live figures use."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ctloop.errors import InvalidInput
from ctloop.serving import status

INF = float("inf")


def test_quantile_interpolates_inside_a_bucket_like_prometheus() -> None:
    buckets = [[0.01, 50.0], [0.1, 100.0], [INF, 100.0]]
    assert status.quantile(0.5, buckets) == pytest.approx(0.01)
    assert status.quantile(0.75, buckets) == pytest.approx(0.055)
    assert status.quantile(0.25, buckets) == pytest.approx(0.005)


def test_quantile_of_nothing_is_none_and_beyond_the_last_bound_is_that_bound() -> None:
    assert status.quantile(0.5, []) is None
    assert status.quantile(0.5, [[0.01, 0.0], [INF, 0.0]]) is None
    assert status.quantile(0.99, [[0.01, 1.0], [INF, 10.0]]) == 0.01


def test_a_stale_or_broken_status_is_left_out(tmp_path: Path) -> None:
    root = str(tmp_path)
    status.write_status(root, "api", "fresh", {"ready": True, "figures": {}})
    status.write_status(root, "api", "stale", {"ready": True, "figures": {}})
    stale = tmp_path / "serving" / "api" / "stale.json"
    body = json.loads(stale.read_text())
    body["updated"] = time.time() - 60
    stale.write_text(json.dumps(body))
    (tmp_path / "serving" / "api" / "broken.json").write_text("{not json")
    found = status.read_statuses(root, "api")
    assert [s["ready"] for s in found] == [True] and len(found) == 1
    assert not [n for n in os.listdir(tmp_path / "serving" / "api") if n.endswith(".tmp")]


def test_no_status_means_no_live_figures(tmp_path: Path) -> None:
    assert status.read_statuses(str(tmp_path), "api") == []
    assert status.live_figures([]) is None


def test_a_deployment_name_cannot_leave_its_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        status.write_status(str(tmp_path), "../x", "r", {})
