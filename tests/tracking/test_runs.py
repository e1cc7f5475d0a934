"""Runs through ``client.runs`` and the ``Run`` handle, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import ctloop
from ctloop.errors import Conflict, InvalidInput, NotFound
from ctloop.tracking.entities import RunStatus


def test_run_records_params_metrics_tags_and_finishes(client: Any) -> None:
    with ctloop.start_run(
        experiment="churn", name="first", tags={"team": "ml"}, client=client
    ) as run:
        run.log_params({"model": "rf", "max_depth": 6})
        for step in range(25):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"auc": 0.91, "f1": 0.7})
        run.set_tag("stage", "dev")
    rec = client.runs.get(run.id)
    assert rec.status is RunStatus.FINISHED
    assert rec.name == "first" and rec.experiment == "churn"
    assert rec.params == {"model": "rf", "max_depth": "6"}
    assert rec.tags == {"team": "ml", "stage": "dev"}
    assert rec.metrics["loss"] == pytest.approx(1 / 25)
    assert rec.metrics["auc"] == pytest.approx(0.91)
    assert rec.end_time is not None and rec.end_time >= rec.start_time
    history = client.runs.metric_history(run.id, "loss")
    assert [m.step for m in history] == list(range(25))
    assert history[0].value == pytest.approx(1.0)


def test_run_records_environment_and_code_version(client: Any, tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    (tmp_path / "dirty.txt").write_text("uncommitted")
    with ctloop.start_run(experiment="e", client=client) as run:
        pass
    rec = client.runs.get(run.id)
    assert len(rec.source["git_commit"]) == 40
    assert rec.source["git_dirty"] is True
    assert rec.environment["python"].count(".") == 2
    assert "numpy" in rec.environment["packages"]
    assert rec.user


def test_failed_run_records_the_error(client: Any) -> None:
    with pytest.raises(ZeroDivisionError), ctloop.start_run(experiment="e", client=client) as run:
        run.log_metric("before", 1.0)
        _ = 1 / 0
    rec = client.runs.get(run.id)
    assert rec.status is RunStatus.FAILED
    assert rec.error is not None and rec.error.startswith("ZeroDivisionError")
    assert "Traceback" in rec.error
    assert rec.metrics == {"before": 1.0}  # buffered points are flushed on failure too


def test_keyboard_interrupt_marks_run_killed(client: Any) -> None:
    with pytest.raises(KeyboardInterrupt), ctloop.start_run(experiment="e", client=client) as run:
        raise KeyboardInterrupt
    assert client.runs.get(run.id).status is RunStatus.KILLED


def test_param_is_immutable_but_same_value_is_fine(client: Any) -> None:
    with ctloop.start_run(experiment="e", client=client) as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)
        client.runs.log_param(run.id, "lr", "0.1")
        with pytest.raises(Conflict) as info:
            client.runs.log_param(run.id, "lr", 0.2)
    message = str(info.value)
    assert "'0.1'" in message and "'0.2'" in message


def test_non_finite_metrics_are_stored_and_read_back(client: Any) -> None:
    with ctloop.start_run(experiment="e", client=client) as run:
        run.log_metric("nan", math.nan)
        run.log_metric("pinf", math.inf)
        run.log_metric("ninf", -math.inf)
        run.log_metric("x", math.nan, step=0)
        run.log_metric("x", 2.5, step=1)
    rec = client.runs.get(run.id)
    assert math.isnan(rec.metrics["nan"])
    assert rec.metrics["pinf"] == math.inf and rec.metrics["ninf"] == -math.inf
    values = [m.value for m in client.runs.metric_history(run.id, "x")]
    assert math.isnan(values[0]) and values[1] == 2.5


def test_latest_metric_is_the_highest_step_not_the_last_logged(client: Any) -> None:
    run = client.runs.create("e")
    client.runs.log_metric(run.id, "m", 5.0, step=10)
    client.runs.log_metric(run.id, "m", 1.0, step=3)  # late point of an earlier step
    assert client.runs.get(run.id).metrics["m"] == 5.0


def test_bad_metric_values_and_keys_are_refused(client: Any) -> None:
    with ctloop.start_run(experiment="e", client=client) as run:
        with pytest.raises(InvalidInput, match="'acc'.*real numbers"):
            run.log_metric("acc", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="steps must be integers"):
            run.log_metric("acc", 1.0, step=1.5)
        with pytest.raises(InvalidInput, match="invalid metric key"):
            run.log_metric("../x", 1.0)
        with pytest.raises(InvalidInput, match="invalid param key"):
            run.log_param("", 1)


def test_numpy_scalars_are_accepted(client: Any) -> None:
    import numpy as np

    with ctloop.start_run(experiment="e", client=client) as run:
        run.log_metric("a", np.float32(0.5), step=np.int64(3))
    assert client.runs.get(run.id).metrics["a"] == 0.5


def test_unknown_ids_raise_not_found_with_the_name(client: Any) -> None:
    with pytest.raises(NotFound, match="no run with id 'nope'"):
        client.runs.get("nope")
    with pytest.raises(NotFound, match="no experiment named 'ghost'"):
        client.experiments.get("ghost")
    with pytest.raises(NotFound, match="no experiment named 'ghost'"):
        client.runs.search("ghost")
    run = client.runs.create("e")
    with pytest.raises(NotFound, match="has no metric 'auc'"):
        client.runs.metric_history(run.id, "auc")
    with pytest.raises(NotFound, match="no run with id 'nope'"):
        client.runs.log_param("nope", "a", 1)


def test_invalid_names_are_refused(client: Any) -> None:
    with pytest.raises(InvalidInput, match="invalid experiment name"):
        client.runs.create("../etc")
    with pytest.raises(InvalidInput, match="invalid experiment name"):
        client.experiments.create("has space")


def test_experiments_list_counts_runs(client: Any) -> None:
    client.experiments.create("empty", "nothing yet")
    for _ in range(3):
        run = client.runs.create("busy")
        client.runs.end(run.id)
    listed = {e.name: e.run_count for e in client.experiments.list()}
    assert listed == {"empty": 0, "busy": 3}
    with pytest.raises(Conflict):
        client.experiments.create("busy")


def test_log_artifact_file_and_folder_round_trip(client: Any, tmp_path: Path) -> None:
    f = tmp_path / "report.txt"
    f.write_text("accuracy 0.9")
    d = tmp_path / "plots"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text("x\n1\n")
    (d / "sub" / "b.csv").write_text("y\n2\n")
    with ctloop.start_run(experiment="e", client=client) as run:
        art = run.log_artifact(f)
        run.log_artifact(d, name="figures/plots")
    assert art.path == "report.txt" and art.kind == "file"
    rec = client.runs.get(run.id)
    assert {(a.path, a.kind, a.file_count) for a in rec.artifacts} == {
        ("report.txt", "file", 1),
        ("figures/plots", "dir", 2),
    }
    out = client.runs.download_artifact(run.id, "figures/plots", tmp_path / "out")
    assert (out / "sub" / "b.csv").read_text() == "y\n2\n"
    with pytest.raises(InvalidInput, match="'..' is not allowed"):
        client.runs.log_artifact(run.id, f, name="../escape.txt")
    with pytest.raises(InvalidInput, match="must be relative"):
        client.runs.log_artifact(run.id, f, name="/abs.txt")
    with pytest.raises(NotFound, match="no such file"):
        client.runs.log_artifact(run.id, tmp_path / "missing.txt")


def test_log_batch_writes_params_tags_metrics_together(client: Any) -> None:
    run = client.runs.create("e")
    client.runs.log_batch(
        run.id,
        metrics=[("m", float(i), i, None) for i in range(1000)],
        params={"p": 1},
        tags={"t": "v"},
    )
    rec = client.runs.get(run.id)
    assert rec.params == {"p": "1"} and rec.tags == {"t": "v"} and rec.metrics == {"m": 999.0}
    assert len(client.runs.metric_history(run.id, "m")) == 1000
