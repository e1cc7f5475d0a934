"""``client.models`` (the registry) on every backend: SQLite, PostgreSQL and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ctloop
from ctloop._internal.environment import current_user
from ctloop.errors import Conflict, IntegrityError, InvalidInput, NotFound, PermissionDenied
from ctloop.registry import ModelVersion, ModelVersionStatus

FEATURES = [
    "age",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "data_usage_gb",
    "days_since_last_login",
]


@pytest.fixture(autouse=True)
def _no_active_run() -> Iterator[None]:
    yield
    while ctloop.active_run() is not None:
        ctloop.end_run()


@pytest.fixture(scope="module")
def churn_data() -> tuple[Any, Any]:
    from ctloop.datasets.churn import generate

    frame = generate(1500, seed=0)
    return frame[FEATURES], frame["churned"]


@pytest.fixture(scope="module")
def trees(churn_data: tuple[Any, Any]) -> list[Any]:
    """Two different fitted classifiers (shallow and deeper)."""
    from sklearn.tree import DecisionTreeClassifier

    X, y = churn_data
    return [DecisionTreeClassifier(max_depth=d, random_state=0).fit(X, y) for d in (2, 5)]


def train(client: Any, model: Any, X: Any, auc: float, experiment: str = "churn") -> str:
    """A run that logged ``model`` with ``run.log_model``; returns its id."""
    with ctloop.start_run(experiment=experiment, client=client) as run:
        run.log_params({"max_depth": model.max_depth})
        run.log_metric("auc", auc)
        run.log_model(model, input_example=X)
    return str(run.id)


@pytest.fixture
def churn(backend_client: Any, trees: list[Any], churn_data: tuple[Any, Any]) -> list[str]:
    """Model 'churn' with versions 1 (shallow tree) and 2 (deeper); returns the run ids."""
    X, _ = churn_data
    runs = [train(backend_client, m, X, auc) for m, auc in zip(trees, (0.71, 0.78), strict=True)]
    backend_client.models.register(runs[0], "model", name="churn", description="baseline")
    backend_client.models.register(runs[1], name="churn", tags={"team": "growth"})
    return runs


def test_register_twice_gives_versions_1_and_2(
    backend_client: Any, churn_data: tuple[Any, Any], trees: list[Any]
) -> None:
    models = backend_client.models
    X, _ = churn_data
    first, second = (
        train(backend_client, m, X, a) for m, a in ((trees[0], 0.71), (trees[1], 0.78))
    )
    v1 = models.register(first, "model", name="churn", description="baseline")
    v2 = models.register(second, name="churn", tags={"team": "growth", "n": 3})

    assert isinstance(v1, ModelVersion) and v1.status is ModelVersionStatus.READY
    assert (v1.name, v1.version, v1.ref, v1.run_id, v1.artifact_path) == (
        "churn",
        1,
        "churn/1",
        first,
        "model",
    )
    assert (v2.version, v2.run_id, v2.tags) == (2, second, {"team": "growth", "n": "3"})
    assert v1.flavor == "sklearn" and v1.description == "baseline" and v1.created_by
    assert v1.signature is not None
    assert [c["name"] for c in v1.signature["inputs"]] == FEATURES
    assert v1.metrics == {"auc": 0.71} and v2.metrics == {"auc": 0.78}
    artifact = backend_client.runs.get(first).artifacts[0]
    assert v1.package_digest == artifact.digest != v2.package_digest

    assert models.versions("churn") == [v1, v2]
    assert models.get_version("churn/1") == v1 == models.get_version(("churn", 1))
    assert models.get_version(v1) == v1
    assert models.get_version("churn") == v2 == models.resolve("churn@latest")
    assert models.resolve("models:/churn/1") == v1
    model = models.get("churn")
    assert (model.name, model.latest_version, model.version_count, model.aliases) == (
        "churn",
        2,
        2,
        {},
    )
    assert [m.name for m in models.list()] == ["churn"]


def test_promote_history_rollback_and_load_the_champion(
    backend_client: Any, churn: list[str], trees: list[Any], churn_data: tuple[Any, Any]
) -> None:
    models = backend_client.models
    X, _ = churn_data
    assert models.set_alias("churn", "champion", 1, reason="first").aliases == ["champion"]
    promoted = models.set_alias("churn", "champion", 2, reason="better auc")
    assert (promoted.version, promoted.aliases) == (2, ["champion"])
    models.set_alias("churn", "champion", 2, reason="again")  # no move, nothing recorded
    models.set_alias("churn", "challenger", 1)
    assert models.get("churn").aliases == {"challenger": 1, "champion": 2}

    champion = models.load("churn@champion")
    assert champion.digest == models.get_version("churn/2").package_digest
    assert champion.predict(X).tolist() == trees[1].predict(X).tolist()
    assert champion.predict_proba(X).tolist() == trees[1].predict_proba(X).tolist()

    back = models.rollback("churn", "champion", reason="canary failed")
    assert (back.version, back.aliases) == (1, ["challenger", "champion"])
    assert models.load("churn@champion").predict(X).tolist() == trees[0].predict(X).tolist()
    models.delete_alias("churn", "challenger", reason="done")

    history = models.alias_history("churn", "champion")
    assert [(e.alias, e.action, e.from_version, e.to_version, e.reason) for e in history] == [
        ("champion", "set", None, 1, "first"),
        ("champion", "set", 1, 2, "better auc"),
        ("champion", "rollback", 2, 1, "canary failed"),
    ]
    # The actor is the user of the process that holds the store: the server's, over HTTP
    # (the same account in these tests).
    assert all(e.name == "churn" and e.actor == current_user() for e in history)
    every = models.alias_history("churn")
    assert [(e.alias, e.action) for e in every] == [
        ("champion", "set"),
        ("champion", "set"),
        ("challenger", "set"),
        ("champion", "rollback"),
        ("challenger", "delete"),
    ]
    assert [e.id for e in every] == sorted(e.id for e in every)

    with pytest.raises(Conflict) as info:
        models.rollback("churn", "champion")
    assert str(info.value) == (
        "alias 'champion' of model 'churn' has no previous version to roll back to: it was "
        f"created pointing at version 1 by {current_user()}; to point it elsewhere, run: "
        "ctloop models promote churn VERSION --alias champion --reason …"
    )


def test_lineage_and_package_digest(backend_client: Any, churn: list[str]) -> None:
    models = backend_client.models
    models.set_alias("churn", "champion", 2)
    lin = models.lineage("churn@champion")
    v2 = models.get_version("churn/2")
    assert lin.version == v2 and lin.package_digest == v2.package_digest
    assert (lin.run.id, lin.run.experiment, lin.run.status) == (churn[1], "churn", "FINISHED")
    assert lin.run.params == {"max_depth": "5"} and lin.run.metrics == {"auc": 0.78}
    assert (lin.flavor, lin.inputs, lin.pipeline_run) == ("sklearn", [], None)
    assert models.lineage(("churn", 1)).run.id == churn[0]
    assert models.package_digest("churn@champion") == v2.package_digest
    assert models.package_digest(f"runs:/{churn[1]}/model") == v2.package_digest


def test_load_by_every_kind_of_reference(
    backend_client: Any, churn: list[str], trees: list[Any], churn_data: tuple[Any, Any]
) -> None:
    X, _ = churn_data
    expected = trees[0].predict(X).tolist()
    for ref in ("churn/1", ("churn", 1), f"runs:/{churn[0]}/model", "models:/churn/1"):
        loaded = backend_client.models.load(ref)
        assert loaded.flavor == "sklearn"
        assert loaded.predict(X).tolist() == expected
    assert backend_client.models.load("churn").predict(X).tolist() == trees[1].predict(X).tolist()


def test_version_tags_and_description(backend_client: Any, churn: list[str]) -> None:
    models = backend_client.models
    models.set_alias("churn", "champion", 1)
    v = models.set_version_tags("churn@champion", {"stage": "prod", "a/b": 1})
    assert (v.version, v.tags) == (1, {"a/b": "1", "stage": "prod"})
    assert models.set_version_tag("churn/1", "stage", "retired").tags["stage"] == "retired"
    assert models.delete_version_tag("churn/1", "a/b").tags == {"stage": "retired"}
    assert models.get_version("churn/1").tags == {"stage": "retired"}
    with pytest.raises(NotFound) as info:
        models.delete_version_tag("churn/1", "a/b")
    assert str(info.value) == (
        "model version churn/1 has no tag 'a/b'; see its tags with: ctloop models show churn/1"
    )
    with pytest.raises(InvalidInput, match="invalid tag key"):
        models.set_version_tag("churn/1", "../x", "y")
    assert models.set_description("churn", "who will leave").description == "who will leave"
    assert models.get("churn").description == "who will leave"
    assert models.set_description("churn", None).description is None


def test_not_found_and_invalid_messages_are_the_same_everywhere(
    backend_client: Any, churn: list[str]
) -> None:
    models = backend_client.models

    def message(call: Any, *args: Any, kind: type[Exception] = NotFound, **kw: Any) -> str:
        with pytest.raises(kind) as info:
            call(*args, **kw)
        return str(info.value)

    assert message(models.get_version, "churn/7") == (
        "model 'churn' has no version 7 (latest is 2); list them with: ctloop models versions churn"
    )
    assert message(models.get_version, "churn@champion") == (
        "model 'churn' has no alias 'champion'; set one with: "
        "ctloop models promote churn VERSION --alias champion --reason …"
    )
    assert message(models.rollback, "churn", "champion") == message(
        models.get_version, "churn@champion"
    )
    assert "no model named 'chrun'; did you mean 'churn'" in message(models.get, "chrun")
    assert "no model named 'chrun'" in message(models.load, "chrun@champion")
    assert "ctloop models list" in message(models.versions, "other")
    assert "no model named 'other'" in message(models.alias_history, "other")
    assert "has no version 9 (latest is 2)" in message(models.set_alias, "churn", "champion", 9)
    assert message(models.delete_alias, "churn", "champion").startswith(
        "model 'churn' has no alias 'champion'"
    )
    assert message(models.register, churn[0], "nope", name="churn").startswith(
        f"run {churn[0]} has no artifact 'nope'"
    )
    assert message(models.register, "no-such-run", name="churn").startswith(
        "no run with id 'no-such-run'"
    )
    assert message(models.package_digest, f"runs:/{churn[0]}/nope").startswith(
        f"run {churn[0]} has no artifact 'nope'"
    )
    invalid = [
        (models.get_version, ("churn/x",), "invalid model reference 'churn/x'"),
        (models.get_version, ("runs:/abc/model",), "names a run's package, not a registered"),
        (models.set_alias, ("churn", "latest", 1), "the alias 'latest' is reserved"),
        (models.set_alias, ("churn", "v3", 1), "invalid alias 'v3'"),
        (models.set_alias, ("churn", "champion", 0), "invalid model version 0"),
    ]
    for call, args, text in invalid:
        assert text in message(call, *args, kind=InvalidInput)
    with pytest.raises(InvalidInput, match="invalid model name 'bad name'"):
        models.register(churn[0], name="bad name")
    with pytest.raises(InvalidInput, match="invalid artifact path '../model'"):
        models.register(churn[0], "../model", name="churn")
    assert [v.version for v in models.versions("churn")] == [1, 2]  # nothing was added


def test_register_refuses_what_is_not_a_model_package(backend_client: Any, tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    from ctloop.models import write_package

    run = backend_client.runs.create("churn", capture_code=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    backend_client.runs.log_artifact(run.id, notes, "notes.txt")
    with pytest.raises(InvalidInput, match="'notes.txt' of run .* is a single file, not a model"):
        backend_client.models.register(run.id, "notes.txt", name="churn")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("a\n1\n")
    backend_client.runs.log_artifact(run.id, plain, "plain")
    with pytest.raises(InvalidInput, match="'plain' of run .* is not a valid ctloop model pack"):
        backend_client.models.register(run.id, "plain", name="churn")

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    forged = tmp_path / "forged"
    write_package(DecisionTreeClassifier().fit(X, [0, 0, 1, 1]), forged, input_example=X)
    data = json.loads((forged / "ctloop-model.json").read_text())
    data["files"] = {path: "0" * 64 for path in data["files"]}
    (forged / "ctloop-model.json").write_text(json.dumps(data))
    backend_client.runs.log_artifact(run.id, forged, "model")
    with pytest.raises(IntegrityError, match=f"artifact 'model' of run {run.id} is corrupted"):
        backend_client.models.register(run.id, name="churn")
    with pytest.raises(NotFound, match="no model named 'churn'"):
        backend_client.models.get("churn")  # nothing was created by the failed attempts


class Doubler:
    """A model of the python flavor (cloudpickle): loading it runs code."""

    def predict(self, data: Any) -> Any:
        return data["age"] * 2


def test_loading_a_python_flavor_needs_trust(
    backend_client: Any, churn_data: tuple[Any, Any]
) -> None:
    X, _ = churn_data
    with ctloop.start_run(experiment="py", client=backend_client) as run:
        run.log_model(Doubler(), input_example=X[["age"]])
    assert backend_client.models.register(run.id, name="doubler").flavor == "python"
    with pytest.raises(PermissionDenied, match="trust=True"):
        backend_client.models.load("doubler/1")
    loaded = backend_client.models.load("doubler/1", trust=True)
    assert loaded.predict(X[["age"]].head(3)).tolist() == (X["age"].head(3) * 2).tolist()


def test_fluent_register_and_load_use_the_default_client(
    backend_client: Any, trees: list[Any], churn_data: tuple[Any, Any]
) -> None:
    from ctloop.client.default import reset_default_client
    from ctloop.testing import store_env

    X, _ = churn_data
    settings = backend_client.settings
    artifacts = None if backend_client.remote else settings.artifacts_root()
    with store_env(settings.store_url(), artifacts):
        reset_default_client()
        try:
            with ctloop.start_run(experiment="churn") as run:
                run.log_metric("auc", 0.9)  # buffered: registration must see it anyway
                run.log_model(trees[0], input_example=X)
                v = ctloop.register_model(run.id, "model", name="churn")
            assert (v.version, v.metrics) == (1, {"auc": 0.9})
            loaded = ctloop.load_model("churn/1")
            assert loaded.predict(X).tolist() == trees[0].predict(X).tolist()
        finally:
            reset_default_client()
    assert backend_client.models.get_version("churn/1") == v


def test_the_rest_api_documents_the_registry_routes() -> None:
    from ctloop.server.app import create_app

    paths = create_app().openapi()["paths"]
    api = "/api/v1/models"
    assert {
        api,
        f"{api}/resolve",
        f"{api}/package-digest",
        f"{api}/{{name}}",
        f"{api}/{{name}}/description",
        f"{api}/{{name}}/versions",
        f"{api}/{{name}}/versions/{{version}}",
        f"{api}/{{name}}/versions/{{version}}/lineage",
        f"{api}/{{name}}/versions/{{version}}/tags",
        f"{api}/{{name}}/versions/{{version}}/tags/{{key}}",
        f"{api}/{{name}}/aliases/{{alias}}",
        f"{api}/{{name}}/aliases/{{alias}}/rollback",
        f"{api}/{{name}}/alias-events",
    } <= set(paths)
    register = paths[f"{api}/{{name}}/versions"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/RegisterIn")
    assert set(paths[f"{api}/{{name}}/aliases/{{alias}}"]) == {"get", "put", "delete"}


def test_a_package_changed_in_the_artifact_store_is_not_loaded(
    backend_client: Any, churn: list[str], tmp_path: Path
) -> None:
    """On every backend the bytes are checked against the registered digest before use."""
    backend_client.runs.download_artifact(churn[0], "model", tmp_path / "copy")
    files = json.loads((tmp_path / "copy" / "ctloop-model.json").read_text())["files"]
    digest = files["model.skops"]
    # the store's object of that file: under the served store (http) or the artifacts root
    stored = [
        p
        for p in tmp_path.rglob(digest[2:])
        if p.parent.name == digest[:2] and p.parent.parent.name == "sha256"
    ]
    assert len(stored) == 1
    stored[0].chmod(0o644)
    stored[0].write_bytes(stored[0].read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="(digest|sha256)") as info:
        backend_client.models.load("churn/1")
    assert "nothing was" in str(info.value)
    assert backend_client.models.load("churn/2").flavor == "sklearn"  # other files are fine


def test_a_model_may_be_named_like_a_fixed_route(
    backend_client: Any, trees: list[Any], churn_data: tuple[Any, Any]
) -> None:
    run = train(backend_client, trees[0], churn_data[0], 0.7)
    for name in ("resolve", "package-digest"):
        backend_client.models.register(run, name=name)
        assert backend_client.models.get(name).latest_version == 1
        assert backend_client.models.get_version(f"{name}/1").name == name


def test_the_http_backend_has_every_method_of_the_local_one() -> None:
    import inspect

    from ctloop.client.http.models import HttpModelsAPI
    from ctloop.client.models import ModelsAPI

    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if not name.startswith("_") and callable(member)
        }

    local, remote = public(ModelsAPI), public(HttpModelsAPI)
    assert set(local) == set(remote)
    for name, signature in local.items():
        assert list(signature.parameters) == list(remote[name].parameters), name
        assert [p.default for p in signature.parameters.values()] == [
            p.default for p in remote[name].parameters.values()
        ], name


def test_load_package_dir_checks_the_folder_against_its_manifest(
    trees: list[Any], churn_data: tuple[Any, Any], tmp_path: Path
) -> None:
    """What the HTTP backend loads with, on its own (belongs in tests/models in time)."""
    from ctloop.models import write_package
    from ctloop.models.loading import load_package_dir
    from ctloop.models.package import ModelManifest

    X, _ = churn_data
    folder = tmp_path / "pkg"
    write_package(trees[0], folder, input_example=X)
    manifest = ModelManifest.from_json((folder / "ctloop-model.json").read_bytes())
    loaded = load_package_dir(folder, manifest, digest="d" * 64)
    assert loaded.digest == "d" * 64
    assert loaded.predict(X).tolist() == trees[0].predict(X).tolist()

    (folder / "extra.py").write_text("print('hi')")
    with pytest.raises(IntegrityError, match="'extra.py' is not in its manifest"):
        load_package_dir(folder, manifest)
    (folder / "extra.py").unlink()
    model_file = folder / "model.skops"
    model_file.write_bytes(model_file.read_bytes()[:-1])
    with pytest.raises(IntegrityError, match="'model.skops' does not match the digest"):
        load_package_dir(folder, manifest)
