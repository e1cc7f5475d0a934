"""Loading packages: digests before deserialisation, trust for pickles, the other flavors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from package_tampering import overwrite_object

import ctloop
from ctloop.errors import IntegrityError, InvalidInput, PermissionDenied
from ctloop.models import LoadedModel, SignatureMismatch, load_package, read_manifest


class Threshold:
    """A hand-written model: churn when monthly charges pass a cut."""

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, frame: Any) -> Any:
        return (frame["monthly_charges"] > self.cut).astype(int).to_numpy()


def _run_payload(marker: str) -> Threshold:
    Path(marker).write_text("code ran while unpickling")
    return Threshold(0.0)


class Payload:
    """Unpickling this writes a marker file: it stands for code an attacker runs on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_run_payload, (self.marker,))


def _log(client: Any, model: Any, x: Any, name: str = "model", **kwargs: Any) -> str:
    with ctloop.start_run(experiment="churn", client=client) as run:
        digest: str = run.log_model(model, name=name, input_example=x, **kwargs).digest
    return digest


def _object_path(client: Any, package: str, file: str) -> str:
    entry = next(e for e in client.blobs.read_manifest(package) if e.path == file)
    return str(client.blobs.url(entry.sha256))


def test_python_flavor_needs_trust_and_says_why(
    sqlite_client: Any, churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    digest = _log(sqlite_client, Threshold(70.0), x)
    assert read_manifest(sqlite_client.blobs, digest).flavor == "python"
    with pytest.raises(PermissionDenied) as info:
        load_package(sqlite_client.blobs, digest)
    message = str(info.value)
    assert "cloudpickle" in message and "arbitrary code" in message and "trust=True" in message

    loaded = load_package(sqlite_client.blobs, digest, trust=True)
    np.testing.assert_array_equal(loaded.predict(x), Threshold(70.0).predict(x))
    with pytest.raises(InvalidInput, match="not a classifier"):
        loaded.predict_proba(x)


def test_a_tampered_file_is_refused_and_nothing_is_unpickled(
    sqlite_client: Any, churn_xy: tuple[Any, Any], tmp_path: Path
) -> None:
    x, _ = churn_xy
    digest = _log(sqlite_client, Threshold(70.0), x)
    marker = tmp_path / "payload-ran.txt"
    malicious = cloudpickle.dumps(Payload(marker))

    # After logging, someone swaps the stored model for a payload (objects are read-only).
    overwrite_object(_object_path(sqlite_client, digest, "model.pkl"), malicious)

    with pytest.raises(IntegrityError, match="file 'model.pkl' failed its digest check"):
        load_package(sqlite_client.blobs, digest, trust=True)
    assert not marker.exists(), "the tampered pickle was deserialised"

    # the payload is real: unpickling it runs its code
    cloudpickle.loads(malicious)
    assert marker.exists()


def test_a_tampered_manifest_is_refused(
    sqlite_client: Any, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    digest = _log(sqlite_client, fitted["ridge"], x)
    path = _object_path(sqlite_client, digest, "ctloop-model.json")
    overwrite_object(path, Path(path).read_bytes().replace(b'"sklearn"', b'"python"'))
    with pytest.raises(IntegrityError, match="ctloop-model.json failed its digest check"):
        load_package(sqlite_client.blobs, digest, trust=True)
    with pytest.raises(IntegrityError):
        read_manifest(sqlite_client.blobs, digest)


@pytest.mark.parametrize("name", ["xgb", "lgbm"])
def test_boosting_libraries_round_trip_in_their_native_formats(
    name: str, sqlite_client: Any, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    model = fitted[name]
    digest = _log(sqlite_client, model, x)
    manifest = read_manifest(sqlite_client.blobs, digest)
    expected_file = {"xgb": "model.ubj", "lgbm": "model.txt"}[name]
    assert expected_file in manifest.files
    assert any(r.startswith(("xgboost==", "lightgbm==")) for r in manifest.requirements)

    loaded = load_package(sqlite_client.blobs, digest)
    assert type(loaded.raw) is type(model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.classes == [0, 1] and loaded.is_classifier


def test_boosters_round_trip(
    sqlite_client: Any, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    xgb_booster = fitted["xgb"].get_booster()
    loaded = load_package(sqlite_client.blobs, _log(sqlite_client, xgb_booster, x, name="xgb"))
    np.testing.assert_allclose(loaded.predict(x), fitted["xgb"].predict_proba(x)[:, 1], rtol=1e-6)

    lgb_booster = fitted["lgbm"].booster_
    loaded = load_package(sqlite_client.blobs, _log(sqlite_client, lgb_booster, x, name="lgb"))
    np.testing.assert_allclose(loaded.predict(x), fitted["lgbm"].predict_proba(x)[:, 1])


def test_lightgbm_multiclass_labels_round_trip(
    sqlite_client: Any, churn_xy: tuple[Any, Any]
) -> None:
    import lightgbm as lgb

    x, _ = churn_xy
    labels = np.where(x["age"] > 55, "senior", np.where(x["age"] > 35, "adult", "young"))
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(x, labels)
    loaded = load_package(sqlite_client.blobs, _log(sqlite_client, model, x))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.classes == ["adult", "senior", "young"]


def test_loaded_models_check_their_input(
    sqlite_client: Any, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    loaded = load_package(sqlite_client.blobs, _log(sqlite_client, fitted["hgb"], x))
    assert isinstance(loaded, LoadedModel) and loaded.signature is not None
    bad = x.head(3).drop(columns=["region"]).assign(age=["old", "older", "oldest"])
    for call in (loaded.predict, loaded.predict_proba):
        with pytest.raises(SignatureMismatch) as info:
            call(bad)
        assert isinstance(info.value, InvalidInput)
        assert len(info.value.problems) == 2
        assert "missing column 'region'" in str(info.value)
        assert "column 'age': expected integer, got string values" in str(info.value)


def test_extra_columns_are_ignored(
    sqlite_client: Any, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    loaded = load_package(sqlite_client.blobs, _log(sqlite_client, fitted["logreg"], x))
    wide = x.assign(customer_id="c1", churned=0)[["customer_id", *reversed(x.columns), "churned"]]
    np.testing.assert_array_equal(loaded.predict_proba(wide), fitted["logreg"].predict_proba(x))
