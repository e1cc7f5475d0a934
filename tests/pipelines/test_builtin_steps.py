"""The built-in steps and the churn template: load, validate, gate, register; cache freshness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctloop.pipelines import PipelineStatus, StepStatus
from ctloop.pipelines.definition import resolve_pipeline

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "churn" / "pipeline.py"


def add_churn(client: Any, tmp_path: Path, rows: int, seed: int = 5) -> Any:
    from ctloop.datasets import churn

    path = tmp_path / "churn.parquet"
    churn.generate(n_rows=rows, seed=seed).to_parquet(path, index=False)
    return client.datasets.add(path, name="churn")


@pytest.fixture
def template() -> Any:
    return resolve_pipeline(f"{TEMPLATE}:churn_pipeline")


def statuses(run: Any) -> dict[str, str]:
    return {s.name: s.status.value for s in run.steps}


def test_the_churn_template_trains_gates_registers_and_caches(
    sqlite_client: Any, tmp_path: Path, template: Any
) -> None:
    client = sqlite_client
    add_churn(client, tmp_path, 1500)
    first = template.run(executor="inline", client=client, max_iter=30, echo=False)
    assert first.status is PipelineStatus.COMPLETED
    assert set(statuses(first).values()) == {"COMPLETED"}
    decision = first.output("gate")
    assert decision["passed"] and not decision["has_champion"]  # nothing to compare with yet
    assert first.output("register") == {"registered": True, "version": 1, "alias": "challenger"}
    challenger = client.models.get_version("churn@challenger")
    assert challenger.run_id == first.run_id
    lineage = client.models.lineage("churn@challenger")
    assert [(i.dataset, i.version) for i in lineage.inputs] == [("churn", 1)]
    tracked = client.runs.get(first.run_id)
    assert "roc_auc" in tracked.metrics and tracked.metrics["gate.passed"] == 1.0
    assert tracked.metrics["validation.errors"] == 0.0
    assert tracked.metrics["validation.checks"] == tracked.metrics["validation.passed"] > 0

    second = template.run(executor="inline", client=client, max_iter=30, echo=False)
    assert set(statuses(second).values()) == {"CACHED"}
    assert len(client.models.versions("churn")) == 1  # a cached register registers nothing
    # a cached load still records its data as an input of the new run (on_cache_hit)
    assert [(i.dataset, i.version) for i in client.runs.get(second.run_id).inputs] == [("churn", 1)]

    # a new version of the data: what reads it runs again, the reference suite does not
    add_churn(client, tmp_path, 2000)
    third = template.run(executor="inline", client=client, max_iter=30, echo=False)
    got = statuses(third)
    assert got.pop("dataset_suite") == "CACHED"
    assert set(got.values()) == {"COMPLETED"}
    assert client.runs.get(third.run_id).inputs[0].version == 2


def test_the_gate_reruns_when_the_champion_moves(
    sqlite_client: Any, tmp_path: Path, template: Any
) -> None:
    client = sqlite_client
    add_churn(client, tmp_path, 1500)
    template.run(executor="inline", client=client, max_iter=30, echo=False)
    client.models.set_alias("churn", "champion", 1, reason="promote the first challenger")
    # the same candidate against the champion it is: not shown better, so not registered
    gate = {"bootstrap": {"metric": "roc_auc", "margin": 0.0, "resamples": 200}}
    again = template.run(executor="inline", client=client, max_iter=30, gate=gate, echo=False)
    assert again.step("train").status is StepStatus.CACHED
    assert again.step("gate").status is StepStatus.COMPLETED
    decision = again.output("gate")
    assert decision["has_champion"] and not decision["passed"]
    assert again.output("register") == {"registered": False, "reason": "the gate failed"}
    assert again.status is PipelineStatus.COMPLETED  # a failed gate is an answer, not an error
    assert len(client.models.versions("churn")) == 1


def test_validation_errors_stop_the_pipeline_before_training(
    sqlite_client: Any, tmp_path: Path, template: Any
) -> None:
    from ctloop.datasets import churn

    client = sqlite_client
    add_churn(client, tmp_path, 1500)
    bad = churn.generate(n_rows=1500, seed=6)
    bad.loc[bad.index[:40], "tenure_months"] = -5  # impossible values
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path, index=False)
    client.datasets.add(path, name="churn")
    run = template.run(
        executor="inline", client=client, dataset="churn@2", raise_on_failure=False, echo=False
    )
    assert run.status is PipelineStatus.FAILED
    assert run.step("validate").status is StepStatus.FAILED
    assert "tenure_months" in (run.step("validate").error or "")
    for name in ("split", "train", "evaluate_model", "gate", "register"):
        assert run.step(name).status is StepStatus.SKIPPED
    assert client.models.list() == []  # nothing unvalidated was registered
