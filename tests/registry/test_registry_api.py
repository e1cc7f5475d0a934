"""``client.models``: registering versions, reading them back, tags, lineage, loading."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import ctloop
from ctloop.client.models import ModelsAPI
from ctloop.errors import IntegrityError, InvalidInput, NotFound, PermissionDenied
from ctloop.registry import ModelVersion, ModelVersionStatus
from ctloop.store import tables

MakeRun = Callable[..., str]

SIGNATURE = {
    "inputs": [
        {"name": "age", "dtype": "integer", "nullable": False},
        {"name": "spend", "dtype": "float", "nullable": False},
    ],
    "output": {"kind": "probabilities", "classes": [0, 1]},
}


def test_register_twice_gives_versions_1_and_2(client: Any, model_run: MakeRun) -> None:
    first_run, second_run = model_run({"auc": 0.81}), model_run({"auc": 0.84})
    v1 = client.models.register(first_run, "model", name="churn", description="baseline")
    v2 = client.models.register(second_run, name="churn", tags={"team": "growth"})

    assert (v1.name, v1.version, v1.ref, v1.run_id) == ("churn", 1, "churn/1", first_run)
    assert (v2.version, v2.run_id, v2.tags) == (2, second_run, {"team": "growth"})
    assert v1.status is ModelVersionStatus.READY
    assert v1.flavor == "sklearn" and v1.signature == SIGNATURE
    assert v1.description == "baseline" and v1.created_by
    artifact = client.runs.get(first_run).artifacts[0]
    assert (v1.artifact_path, v1.package_digest) == ("model", artifact.digest)
    assert v1.metrics == {"auc": 0.81} and v2.metrics == {"auc": 0.84}

    assert [v.version for v in client.models.versions("churn")] == [1, 2]
    assert client.models.get_version("churn/1") == v1
    assert client.models.get_version(("churn", 2)).run_id == second_run
    assert client.models.get_version("churn").version == 2  # NAME is the latest
    assert client.models.get_version("churn@latest").version == 2
    assert client.models.resolve("models:/churn/1").version == 1
    model = client.models.get("churn")
    assert (model.latest_version, model.version_count, model.aliases) == (2, 2, {})
    assert [m.name for m in client.models.list()] == ["churn"]


def test_registering_the_same_package_again_makes_a_new_version(
    client: Any, model_run: MakeRun
) -> None:
    run = model_run()
    a = client.models.register(run, name="churn")
    b = client.models.register(run, name="churn")
    assert (a.version, b.version) == (1, 2)
    assert a.package_digest == b.package_digest


def test_metrics_are_a_snapshot_taken_at_registration(client: Any, model_run: MakeRun) -> None:
    run = model_run({"auc": 0.7, "loss": math.nan})
    v = client.models.register(run, name="churn")
    client.runs.log_metric(run, "auc", 0.9, step=5)
    assert client.runs.get(run).metrics["auc"] == 0.9
    again = client.models.get_version("churn/1")
    assert again.metrics["auc"] == 0.7
    assert math.isnan(again.metrics["loss"]) and math.isnan(v.metrics["loss"])


def test_versions_are_immutable(client: Any, model_run: MakeRun) -> None:
    """No API changes which package a version is; registering never takes a digest."""
    v = client.models.register(model_run(), name="churn")
    writers = [n for n in dir(ModelsAPI) if not n.startswith("_")]
    changes_package = [n for n in writers if "package" in n and n not in ("package_digest",)]
    assert changes_package == []
    params = inspect.signature(ModelsAPI.register).parameters
    assert not {"digest", "package_digest", "path", "uri", "url"} & set(params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.package_digest = "0" * 64  # type: ignore[misc]
    client.models.set_version_tag("churn/1", "stage", "tested")
    assert client.models.get_version("churn/1").package_digest == v.package_digest


def test_a_relogged_artifact_does_not_change_a_registered_version(
    client: Any, model_run: MakeRun, churn_model: tuple[Any, Any]
) -> None:
    from sklearn.linear_model import LogisticRegression

    run = model_run()
    v1 = client.models.register(run, name="churn")
    _, frame = churn_model
    other = LogisticRegression(C=0.01).fit(frame, [1, 0, 1, 0, 1, 0])
    client.runs.log_model(run, other, "model", input_example=frame)
    v2 = client.models.register(run, name="churn")
    assert v1.package_digest != v2.package_digest
    assert client.models.get_version("churn/1").package_digest == v1.package_digest


def test_register_refuses_a_run_artifact_that_is_not_a_model_package(
    client: Any, tmp_path: Path
) -> None:
    run = client.runs.create("churn", capture_code=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    client.runs.log_artifact(run.id, notes, "notes.txt")
    with pytest.raises(InvalidInput, match="'notes.txt' of run .* is a single file, not a model"):
        client.models.register(run.id, "notes.txt", name="churn")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("a\n1\n")
    client.runs.log_artifact(run.id, plain, "plain")
    with pytest.raises(InvalidInput, match="'plain' of run .* is not a valid ctloop model pack"):
        client.models.register(run.id, "plain", name="churn")
    with pytest.raises(NotFound, match="no model named 'churn'"):
        client.models.get("churn")  # nothing was created by the failed attempts


def test_register_uses_only_artifacts_the_store_recorded(
    client: Any, model_run: MakeRun, tmp_path: Path
) -> None:
    """A path that exists on disk but was never logged is not a source; neither is a URL."""
    run = model_run()
    on_disk = tmp_path / "elsewhere"
    client.runs.download_artifact(run, "model", on_disk)  # a real package, but not logged
    assert (on_disk / "ctloop-model.json").is_file()
    for path in (str(on_disk.name), "elsewhere", "missing"):
        with pytest.raises(NotFound, match=f"run {run} has no artifact '{path}'"):
            client.models.register(run, path, name="churn")
    for bad in (str(on_disk), "../model", "s3://bucket/model"):
        with pytest.raises((InvalidInput, NotFound)):
            client.models.register(run, bad, name="churn")
    with pytest.raises(NotFound, match="no run with id 'nope'"):
        client.models.register("nope", name="churn")
    with pytest.raises(InvalidInput, match="invalid model name 'bad name'"):
        client.models.register(run, name="bad name")


def test_unknown_model_version_and_alias_messages(client: Any, model_run: MakeRun) -> None:
    client.models.register(model_run(), name="churn")
    client.models.register(model_run(), name="churn")
    with pytest.raises(NotFound) as info:
        client.models.get_version("churn/7")
    assert str(info.value) == (
        "model 'churn' has no version 7 (latest is 2); list them with: ctloop models versions churn"
    )
    with pytest.raises(NotFound) as info:
        client.models.get_version("churn@champion")
    assert str(info.value) == (
        "model 'churn' has no alias 'champion'; set one with: "
        "ctloop models promote churn VERSION --alias champion --reason …"
    )
    client.models.set_alias("churn", "challenger", 2)
    with pytest.raises(NotFound, match=r"no alias 'champion' \(it has: challenger\)"):
        client.models.get_version("churn@champion")
    with pytest.raises(NotFound, match="no model named 'chrun'; did you mean 'churn'"):
        client.models.get_version("chrun/1")
    with pytest.raises(NotFound, match="ctloop models list"):
        client.models.versions("other")
    with pytest.raises(InvalidInput, match="invalid model reference 'churn/x'"):
        client.models.get_version("churn/x")
    with pytest.raises(InvalidInput, match="names a run's package, not a registered version"):
        client.models.get_version("runs:/abc/model")


def test_version_tags_set_and_delete(client: Any, model_run: MakeRun) -> None:
    client.models.register(model_run(), name="churn")
    client.models.set_alias("churn", "champion", 1)
    v = client.models.set_version_tags("churn@champion", {"stage": "prod", "owner": "ana"})
    assert v.tags == {"owner": "ana", "stage": "prod"}
    v = client.models.set_version_tag("churn/1", "stage", "retired")
    assert v.tags == {"owner": "ana", "stage": "retired"}
    v = client.models.delete_version_tag("churn/1", "owner")
    assert client.models.get_version("churn/1").tags == {"stage": "retired"} == v.tags
    with pytest.raises(NotFound, match="model version churn/1 has no tag 'owner'"):
        client.models.delete_version_tag("churn/1", "owner")
    with pytest.raises(InvalidInput, match="invalid tag key"):
        client.models.set_version_tag("churn/1", "../x", "y")


def test_list_shows_latest_version_and_aliases(client: Any, model_run: MakeRun) -> None:
    for name in ("fraud", "churn", "churn"):
        client.models.register(model_run(), name=name)
    client.models.set_alias("churn", "champion", 1)
    client.models.set_alias("churn", "challenger", 2)
    listed = {m.name: m for m in client.models.list()}
    assert list(listed) == ["churn", "fraud"]
    assert listed["churn"].aliases == {"challenger": 2, "champion": 1}
    assert (listed["churn"].latest_version, listed["fraud"].latest_version) == (2, 1)
    assert client.models.get_version("churn/1").aliases == ["champion"]
    assert [v.aliases for v in client.models.versions("churn")] == [["champion"], ["challenger"]]
    updated = client.models.set_description("churn", "who will leave")
    assert updated.description == "who will leave"


def test_lineage_goes_from_version_to_run_inputs_and_code(
    client: Any, tmp_path: Path, churn_model: tuple[Any, Any]
) -> None:
    data = tmp_path / "train.csv"
    data.write_text("age,left\n30,0\n40,1\n")
    dataset = client.datasets.add(data, "churn-data", pointer=False)
    run = client.runs.create("churn", name="train-1", capture_code=False)
    client.runs.log_params(run.id, {"C": 0.5})
    client.runs.log_metric(run.id, "auc", 0.8)
    client.runs.log_input(run.id, dataset, "training")
    client.runs.log_model(run.id, churn_model[0], input_example=churn_model[1])
    with client.db.write() as conn:  # the code version a run in a git checkout records
        conn.execute(
            sa.update(tables.runs)
            .where(tables.runs.c.id == run.id)
            .values(source={"git_commit": "a" * 40, "git_dirty": True, "git_branch": "main"})
        )
    v = client.models.register(run.id, name="churn")

    lin = client.models.lineage("churn/1")
    assert lin.version == v
    assert (lin.run.id, lin.run.name, lin.run.experiment) == (run.id, "train-1", "churn")
    assert lin.run.params == {"C": "0.5"} and lin.run.metrics == {"auc": 0.8}
    assert [(i.dataset, i.version, i.digest, i.context) for i in lin.inputs] == [
        ("churn-data", 1, dataset.digest, "training")
    ]
    assert lin.code is not None
    assert (lin.code.git_commit, lin.code.git_dirty, lin.code.git_branch) == (
        "a" * 40,
        True,
        "main",
    )
    assert (lin.package_digest, lin.flavor, lin.pipeline_run) == (v.package_digest, "sklearn", None)


def test_lineage_of_a_run_without_code_or_inputs(client: Any, model_run: MakeRun) -> None:
    client.models.register(model_run(), name="churn")
    lin = client.models.lineage("churn")
    assert (lin.code, lin.inputs) == (None, [])


def test_load_reads_the_package_by_its_registered_digest(
    client: Any, model_run: MakeRun, churn_model: tuple[Any, Any]
) -> None:
    model, frame = churn_model
    run = model_run()
    v = client.models.register(run, name="churn")
    client.models.set_alias("churn", "champion", 1)
    for ref in ("churn@champion", "churn/1", "churn", ("churn", 1), f"runs:/{run}/model"):
        assert client.models.package_digest(ref) == v.package_digest
        loaded = client.models.load(ref)
        assert loaded.digest == v.package_digest
        assert loaded.predict(frame).tolist() == model.predict(frame).tolist()
    with pytest.raises(NotFound, match=f"run {run} has no artifact 'nope'"):
        client.models.load(f"runs:/{run}/nope")


class Doubler:
    """A model of the python flavor (cloudpickle): loading it runs code."""

    def predict(self, data: Any) -> Any:
        return data["age"] * 2


def test_load_of_a_python_flavor_needs_trust(client: Any, churn_model: tuple[Any, Any]) -> None:
    _, frame = churn_model
    run = client.runs.create("churn", capture_code=False)
    client.runs.log_model(run.id, Doubler(), input_example=frame[["age"]])
    assert client.models.register(run.id, name="doubler").flavor == "python"
    with pytest.raises(PermissionDenied, match="trust=True"):
        client.models.load("doubler/1")
    assert client.models.load("doubler/1", trust=True).predict(frame).tolist()[0] == 44


def test_register_refuses_a_package_that_fails_verification(
    client: Any, churn_model: tuple[Any, Any], tmp_path: Path
) -> None:
    from ctloop.models import write_package

    folder = tmp_path / "forged"
    write_package(churn_model[0], folder, input_example=churn_model[1])
    manifest = json.loads((folder / "ctloop-model.json").read_text())
    manifest["files"] = {path: "0" * 64 for path in manifest["files"]}
    (folder / "ctloop-model.json").write_text(json.dumps(manifest))
    run = client.runs.create("churn", capture_code=False)
    client.runs.log_artifact(run.id, folder, "model")
    with pytest.raises(IntegrityError, match=f"artifact 'model' of run {run.id} is corrupted"):
        client.models.register(run.id, name="churn")
    with pytest.raises(NotFound):
        client.models.get("churn")


def test_fluent_register_and_load_use_the_default_client(
    store_url: str,
    artifacts_dir: Path,
    churn_model: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ctloop.client.default import reset_default_client

    monkeypatch.setenv("CTLOOP_STORE", store_url)
    monkeypatch.setenv("CTLOOP_ARTIFACTS", str(artifacts_dir))
    reset_default_client()
    try:
        with ctloop.start_run(experiment="churn") as run:
            run.log_metric("auc", 0.9)  # buffered: registration must see it anyway
            run.log_model(churn_model[0], input_example=churn_model[1])
            v = ctloop.register_model(run.id, "model", name="churn")
        assert isinstance(v, ModelVersion) and v.version == 1
        assert v.metrics == {"auc": 0.9}
        assert ctloop.load_model("churn/1") is not None
        by_run = ctloop.load_model(run.id, "model")  # a run id and the artifact path
        assert by_run.digest == ctloop.load_model("churn@latest").digest
        with pytest.raises(InvalidInput, match="pass trust=... as a keyword"):
            ctloop.load_model(run.id, True)  # type: ignore[arg-type]
    finally:
        reset_default_client()
