"""``ctloop runs`` and ``ctloop experiments`` as a person runs them (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ctloop


def ctl(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    client = ctloop.Client(store=str(path))
    for name, auc in (("low", 0.6), ("high", 0.9)):
        with ctloop.start_run(experiment="churn", name=name, client=client) as run:
            run.log_params({"model": name, "depth": 3})
            run.log_metric("auc", auc)
    return path


def _ids(store: Path) -> dict[str, Any]:
    out = ctl("runs", "list", "--json", store=store)
    assert out.returncode == 0, out.stderr
    return {r["name"]: r for r in json.loads(out.stdout)["runs"]}


def test_runs_list_filter_and_json(store: Path) -> None:
    runs = _ids(store)
    assert set(runs) == {"low", "high"}
    assert runs["high"]["metrics"]["auc"] == 0.9
    out = ctl("runs", "list", "-f", "metrics.auc > 0.8", "--json", store=store)
    assert [r["name"] for r in json.loads(out.stdout)["runs"]] == ["high"]
    table = ctl("runs", "list", "-o", "metrics.auc DESC", store=store)
    assert table.returncode == 0
    assert table.stdout.index("high") < table.stdout.index("low")


def test_runs_show_and_compare(store: Path) -> None:
    runs = _ids(store)
    show = ctl("runs", "show", runs["high"]["id"], store=store)
    assert show.returncode == 0 and "auc" in show.stdout and "FINISHED" in show.stdout
    cmp = ctl("runs", "compare", runs["low"]["id"], runs["high"]["id"], "--json", store=store)
    data = json.loads(cmp.stdout)
    assert data["params"] == {"model": ["low", "high"]}  # depth is equal, so hidden
    assert data["metrics"]["auc"] == [0.6, 0.9]
    hist = ctl("runs", "metrics", runs["low"]["id"], "auc", "--json", store=store)
    assert json.loads(hist.stdout)[0]["value"] == 0.6


def test_experiments_list(store: Path) -> None:
    out = ctl("experiments", "list", "--json", store=store)
    assert [(e["name"], e["run_count"]) for e in json.loads(out.stdout)] == [("churn", 2)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "show", "does-not-exist"), "no run with id 'does-not-exist'"),
        (("runs", "list", "-f", "metrics.auc >> 1"), "invalid filter"),
        (("runs", "list", "-e", "ghost"), "no experiment named 'ghost'"),
        (("runs", "list", "--page-token", "zzz"), "invalid page_token"),
    ],
)
def test_errors_are_one_line_without_traceback(
    store: Path, args: tuple[str, ...], message: str
) -> None:
    out = ctl(*args, store=store)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and message in out.stderr
