"""The sklearn flavor: round trips, and the allowlist that decides what a file may build."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from package_tampering import edit_skops, find_states

from ctloop.artifacts.blobstore import BlobStore
from ctloop.errors import InvalidInput, PermissionDenied
from ctloop.models import load_package, write_package
from ctloop.models.flavors._sklearn_allowlist import TREE, TREE_PREDICTOR, allowlist


def round_trip(model: Any, x: Any, tmp_path: Path, blobs: BlobStore, name: str = "pkg") -> Any:
    write_package(model, tmp_path / name, input_example=x)
    return load_package(blobs, blobs.put(tmp_path / name).digest)


@pytest.mark.parametrize("name", ["logreg", "forest", "gboost", "hgb"])
def test_classifiers_round_trip_with_equal_predictions(
    name: str,
    tmp_path: Path,
    blobs: BlobStore,
    fitted: dict[str, Any],
    churn_xy: tuple[Any, Any],
) -> None:
    x, _ = churn_xy
    model = fitted[name]
    loaded = round_trip(model, x, tmp_path, blobs)
    assert loaded.flavor == "sklearn"
    assert type(loaded.raw) is type(model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.classes == [0, 1]


def test_records_from_json_predict_like_the_frame(
    tmp_path: Path, blobs: BlobStore, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    """What a server receives (JSON records: strings, nulls) predicts as the typed frame does."""
    x, _ = churn_xy
    loaded = round_trip(fitted["hgb"], x, tmp_path, blobs)
    rows = x.head(200)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in rows.astype(object).to_dict("records")
    ]
    np.testing.assert_array_equal(loaded.predict_proba(records), fitted["hgb"].predict_proba(rows))


def test_regression_round_trip(
    tmp_path: Path, blobs: BlobStore, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    x, _ = churn_xy
    loaded = round_trip(fitted["ridge"], x, tmp_path, blobs)
    assert loaded.signature is not None and loaded.signature.output is not None
    assert loaded.signature.output.kind == "regression"
    np.testing.assert_array_equal(loaded.predict(x), fitted["ridge"].predict(x))
    with pytest.raises(InvalidInput, match="not a classifier"):
        loaded.predict_proba(x)


def test_models_trained_on_arrays_round_trip(tmp_path: Path, blobs: BlobStore) -> None:
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(0)
    x = rng.random((200, 4))
    model = ExtraTreesRegressor(n_estimators=5, random_state=0).fit(x, x[:, 0] * 2)
    loaded = round_trip(model, x, tmp_path, blobs)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_the_allowlist_covers_estimators_and_admits_tree_types() -> None:
    allow = allowlist()
    assert "sklearn.pipeline.Pipeline" in allow.objects
    assert "sklearn.compose._column_transformer.ColumnTransformer" in allow.objects
    assert "sklearn.preprocessing._encoders.OneHotEncoder" in allow.objects
    assert "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper" in allow.objects
    assert TREE_PREDICTOR in allow.objects and TREE in allow.all
    assert "numpy.log1p" in allow.functions
    assert not any(n.startswith(("builtins.eval", "os.", "subprocess.")) for n in allow.all)
    assert "sklearn.neighbors._kd_tree.KDTree" not in allow.all


def test_types_off_the_allowlist_are_refused_when_logged(tmp_path: Path) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    x = np.random.default_rng(0).random((30, 2))
    knn = KNeighborsClassifier(n_neighbors=3, algorithm="kd_tree").fit(x, x[:, 0] > 0.5)
    with pytest.raises(
        InvalidInput, match=r"sklearn\.neighbors\._kd_tree\.KDTree.*flavor='python'"
    ):
        write_package(knn, tmp_path / "knn")
    brute = KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(x, x[:, 0] > 0.5)
    assert write_package(brute, tmp_path / "brute").flavor == "sklearn"


def test_foreign_estimators_inside_a_pipeline_are_refused(
    tmp_path: Path, fitted: dict[str, Any], churn_xy: tuple[Any, Any]
) -> None:
    from sklearn.pipeline import Pipeline

    x, y = churn_xy
    wrapped = Pipeline([("model", fitted["xgb"])])
    with pytest.raises(InvalidInput, match=r"xgboost\.sklearn\.XGBClassifier"):
        write_package(wrapped, tmp_path / "pkg", flavor="sklearn")


def _forge_function(tmp_path: Path, module: str, name: str) -> Path:
    """A package whose FunctionTransformer names ``module.name`` instead of numpy.log1p."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x = np.random.default_rng(0).random((30, 2))
    model = make_pipeline(FunctionTransformer(np.log1p), Ridge()).fit(x, x[:, 0])
    pkg = tmp_path / "forged"
    write_package(model, pkg, input_example=x)

    def point_elsewhere(schema: dict[str, Any], members: dict[str, bytes]) -> None:
        node = next(s for s in find_states(schema, "log1p") if s["__loader__"] == "FunctionNode")
        node["__module__"], node["__class__"] = module, name

    edit_skops(pkg, point_elsewhere)
    return pkg


def test_a_file_naming_other_code_is_refused_before_anything_is_imported(
    tmp_path: Path, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skops.io

    marker = tmp_path / "imported.txt"
    evil = tmp_path / "modules"
    evil.mkdir()
    (evil / "ctloop_evil_mod.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported')\n"
        "def run(x):\n    return x\n"
    )
    monkeypatch.syspath_prepend(str(evil))
    pkg = _forge_function(tmp_path, "ctloop_evil_mod", "run")

    with pytest.raises(PermissionDenied, match=r"not on ctloop's allowlist.*ctloop_evil_mod\.run"):
        load_package(blobs, blobs.put(pkg).digest)
    assert not marker.exists()
    assert "ctloop_evil_mod" not in sys.modules

    # the attack is real: trusting the file's own list of types imports (runs) the module
    path = pkg / "model.skops"
    skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    assert marker.exists()
    monkeypatch.delitem(sys.modules, "ctloop_evil_mod")


def test_loading_never_asks_the_file_which_types_to_trust(
    tmp_path: Path,
    blobs: BlobStore,
    fitted: dict[str, Any],
    churn_xy: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import skops.io

    def forbidden(**_: Any) -> list[str]:
        raise AssertionError("get_untrusted_types must not decide what ctloop trusts")

    monkeypatch.setattr(skops.io, "get_untrusted_types", forbidden)
    x, _ = churn_xy
    loaded = round_trip(fitted["forest"], x, tmp_path, blobs)
    np.testing.assert_array_equal(loaded.predict(x), fitted["forest"].predict(x))


def test_compressed_members_are_refused(
    tmp_path: Path, blobs: BlobStore, fitted: dict[str, Any]
) -> None:
    import zipfile

    from package_tampering import reseal

    pkg = tmp_path / "pkg"
    write_package(fitted["ridge"], pkg)
    path = pkg / "model.skops"
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    reseal(pkg)
    with pytest.raises(InvalidInput, match="compressed"):
        load_package(blobs, blobs.put(pkg).digest)


@pytest.mark.parametrize(
    "make",
    [
        "ensemble.ExtraTreesClassifier(n_estimators=3)",
        "ensemble.IsolationForest(n_estimators=3, max_features=0.6)",
        "ensemble.BaggingClassifier(n_estimators=3, max_features=0.5)",
        "ensemble.AdaBoostClassifier(n_estimators=3)",
        "ensemble.GradientBoostingClassifier(n_estimators=3)",
        "ensemble.HistGradientBoostingClassifier(max_iter=3)",
        "tree.DecisionTreeClassifier(ccp_alpha=0.01)",
        "calibration.CalibratedClassifierCV(linear_model.LogisticRegression())",
        "neural_network.MLPClassifier(max_iter=5)",
        "svm.SVC()",
    ],
)
def test_genuine_tree_and_other_models_pass_every_check(
    make: str, tmp_path: Path, blobs: BlobStore
) -> None:
    """Three-class data: multi-output trees, one GB tree per class, several predictors."""
    import importlib
    import warnings

    for module in ("ensemble", "tree", "calibration", "linear_model", "neural_network", "svm"):
        globals()[module] = importlib.import_module(f"sklearn.{module}")
    model = eval(make)  # noqa: S307 - the parameter list above, not user input
    rng = np.random.default_rng(0)
    x = rng.random((150, 4))
    y = (x[:, 0] * 3).astype(int)
    with warnings.catch_warnings():
        # MLPClassifier(max_iter=5) does not converge, on purpose: the test is about storage
        warnings.simplefilter(
            "ignore", category=__import__("sklearn").exceptions.ConvergenceWarning
        )
        model.fit(x, y)
    loaded = round_trip(model, x, tmp_path, blobs)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
