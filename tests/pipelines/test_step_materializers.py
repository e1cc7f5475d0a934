"""Materializers: each type of step output goes through a real artifact store and back.

Every test saves with ``materializers.save`` into ``client.objects`` (a real store on
disk), checks which materializer was chosen, and loads the value back with
``materializers.load``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.errors import InvalidInput
from ctloop.pipelines import ArtifactRef, PickledOutputWarning
from ctloop.pipelines import materializers as mz


def roundtrip(value: Any, client: Any) -> tuple[ArtifactRef, Any]:
    ref = mz.save(value, client.objects)
    return ref, mz.load(ref, client.objects)


@pytest.fixture
def mz_frame() -> pd.DataFrame:
    """A frame with the dtypes that trip up naive Parquet writers, on a named index."""
    return pd.DataFrame(
        {
            "plan": pd.Categorical(["basic", "pro", "basic"], categories=["pro", "basic", "x"]),
            "tier": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
            "signup": pd.to_datetime(["2020-01-01 10:00", "2021-02-03 00:00", None]),
            "seen": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]).tz_localize(
                "Europe/Paris"
            ),
            "calls": pd.array([3, None, 7], dtype="Int64"),
            "name": pd.array(["ann", None, "zoë"], dtype="string"),
            "score": [0.5, math.nan, 1.25],
            "active": [True, False, True],
            "wait": pd.to_timedelta([1, 2, 3], unit="s"),
        },
        index=pd.Index([1003, 1001, 1002], name="customer_id"),
    )


# --- DataFrame ----------------------------------------------------------------------------


def test_dataframe_round_trips_with_dtypes_and_index(sqlite_client: Any, mz_frame: Any) -> None:
    ref, back = roundtrip(mz_frame, sqlite_client)
    assert ref.materializer == "dataframe/1"
    assert ref.kind == "file" and ref.size > 0
    assert ref.type == f"{type(mz_frame).__module__}.{type(mz_frame).__qualname__}"
    pd.testing.assert_frame_equal(back, mz_frame)  # values, dtypes, index and its name
    assert back["plan"].cat.categories.tolist() == ["pro", "basic", "x"]
    assert back["tier"].cat.ordered
    assert str(back["calls"].dtype) == "Int64" and back["calls"].isna().tolist() == [
        False,
        True,
        False,
    ]
    assert str(back["seen"].dt.tz) == "Europe/Paris"


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(5, 11, 2),
        pd.Index(["p", "q", "r"], name="key"),
        pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-05"], name="day"),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["group", "n"]),
    ],
    ids=["range-with-step", "strings", "datetimes", "multi"],
)
def test_dataframe_keeps_a_non_default_index(sqlite_client: Any, index: Any) -> None:
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=index)
    ref, back = roundtrip(frame, sqlite_client)
    assert ref.materializer == "dataframe/1"
    pd.testing.assert_frame_equal(back, frame)


def test_dataframe_parquet_cannot_store_falls_back_to_pickle(sqlite_client: Any) -> None:
    # Parquet needs one type per column; [1, "a", 2.5] is matched by ``dataframe`` first,
    # its writer gives up, and no other materializer but pickle takes a DataFrame.
    frame = pd.DataFrame({"mixed": [1, "a", 2.5], "ok": [1, 2, 3]})
    assert mz.materializer_for(frame).name == "dataframe"
    with pytest.warns(PickledOutputWarning, match=r"pandas\..*DataFrame has no portable format"):
        ref = mz.save(frame, sqlite_client.objects)
    assert ref.materializer == "pickle/1"
    back = mz.load(ref, sqlite_client.objects)
    pd.testing.assert_frame_equal(back, frame)
    assert [type(v) for v in back["mixed"]] == [int, str, float]


def test_dataframe_with_duplicate_column_names_falls_back_to_pickle(sqlite_client: Any) -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.warns(PickledOutputWarning):
        ref, back = roundtrip(frame, sqlite_client)
    assert ref.materializer == "pickle/1"
    pd.testing.assert_frame_equal(back, frame)


def test_dataframe_digest_is_deterministic(sqlite_client: Any, mz_frame: Any) -> None:
    first = mz.save(mz_frame, sqlite_client.objects)
    again = mz.save(mz_frame.copy(deep=True), sqlite_client.objects)
    assert first.digest == again.digest
    changed = mz_frame.copy()
    changed.loc[1001, "score"] = 9.0
    assert mz.save(changed, sqlite_client.objects).digest != first.digest


# --- Series -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["churned", None, 0], ids=["str-name", "no-name", "int-name"])
def test_series_round_trips_with_its_name(sqlite_client: Any, name: Any) -> None:
    series = pd.Series([0.1, None, 0.3], name=name, index=pd.Index(list("abc"), name="k"))
    ref, back = roundtrip(series, sqlite_client)
    assert ref.materializer == "series/1"
    pd.testing.assert_series_equal(back, series)
    assert back.name == name and type(back.name) is type(name)


def test_series_of_categories_round_trips(sqlite_client: Any) -> None:
    series = pd.Series(pd.Categorical(["a", "b", "a"], categories=["b", "a"]), name="c")
    ref, back = roundtrip(series, sqlite_client)
    assert ref.materializer == "series/1"
    pd.testing.assert_series_equal(back, series)


@pytest.mark.parametrize("name", [1.5, ("metric", "auc")], ids=["float-name", "tuple-name"])
def test_series_with_any_hashable_name_keeps_it(sqlite_client: Any, name: Any) -> None:
    series = pd.Series([1, 2, 3], name=name)
    with pytest.warns(PickledOutputWarning):  # Parquet keeps str and int names only
        ref, back = roundtrip(series, sqlite_client)
    assert ref.materializer == "pickle/1"
    assert back.name == name


def test_series_attrs_are_not_changed_by_the_round_trip(sqlite_client: Any) -> None:
    series = pd.Series([1, 2, 3], name="x")
    _, back = roundtrip(series, sqlite_client)
    assert back.attrs == series.attrs == {}


# --- ndarray ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int8).reshape(3, 4),
        np.array([0, 65535], dtype=np.uint16),
        np.linspace(0, 1, 7, dtype=np.float32),
        np.array([[1.5, np.nan], [np.inf, -0.0]]),
        np.array([True, False]),
        np.array([1 + 2j, -1j]),
        np.array(["ab", "ç"]),  # fixed-width unicode, not object
        np.array([b"x", b"yz"]),
        np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
        np.array([(1, 2.5), (3, 4.5)], dtype=[("id", "i4"), ("v", "f8")]),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(10)[::3],  # a strided view
        np.array(3.5),  # 0-d
        np.zeros((0, 3)),
    ],
    ids=lambda a: f"{a.dtype}-{a.shape}",
)
def test_ndarray_round_trips_dtype_and_shape(sqlite_client: Any, array: Any) -> None:
    ref, back = roundtrip(array, sqlite_client)
    assert ref.materializer == "ndarray/1"
    assert type(back) is np.ndarray
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_ndarray_zero_dimensional_stays_an_array(sqlite_client: Any) -> None:
    _, back = roundtrip(np.array(7, dtype=np.int16), sqlite_client)
    assert isinstance(back, np.ndarray) and back.ndim == 0 and back.dtype == np.int16
    assert back.item() == 7


def test_object_array_is_not_stored_as_npy(sqlite_client: Any) -> None:
    array = np.array([1, "a", None], dtype=object)
    assert mz.materializer_for(array).name == "pickle"
    with pytest.warns(PickledOutputWarning, match=r"numpy\.ndarray"):
        ref, back = roundtrip(array, sqlite_client)
    assert ref.materializer == "pickle/1"
    assert back.dtype == object and back.tolist() == [1, "a", None]


def test_masked_array_keeps_its_mask(sqlite_client: Any) -> None:
    array = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PickledOutputWarning)  # a fallback may pickle it
        _, back = roundtrip(array, sqlite_client)
    assert isinstance(back, np.ma.MaskedArray)
    assert back.mask.tolist() == [False, True, False]


def test_ndarray_digest_is_deterministic(sqlite_client: Any) -> None:
    array = np.random.default_rng(0).normal(size=(20, 3))
    first = mz.save(array, sqlite_client.objects)
    assert mz.save(array.copy(), sqlite_client.objects).digest == first.digest
    assert mz.save(array.astype(np.float32), sqlite_client.objects).digest != first.digest


# --- models -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mz_xy() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    y = pd.Series((x["a"] + 0.5 * x["b"] > 0).astype(int), name="label")
    return x, y


def _check_model_round_trip(model: Any, x: Any, client: Any) -> Any:
    ref, back = roundtrip(model, client)
    assert ref.materializer == "model/1"
    assert ref.kind == "dir"  # a ctloop model package
    assert type(back) is type(model) and back is not model
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    np.testing.assert_array_equal(back.predict_proba(x), model.predict_proba(x))
    return back


def test_fitted_sklearn_model_is_stored_as_a_model_package(sqlite_client: Any, mz_xy: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = mz_xy
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0))
    model.fit(x, y)
    _check_model_round_trip(model, x, sqlite_client)


def test_fitted_xgboost_model_is_stored_as_a_model_package(sqlite_client: Any, mz_xy: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = mz_xy
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    _check_model_round_trip(model, x, sqlite_client)


def test_fitted_lightgbm_model_is_stored_as_a_model_package(sqlite_client: Any, mz_xy: Any) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = mz_xy
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y)
    _check_model_round_trip(model, x, sqlite_client)


# --- JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"auc": 0.81, "folds": [0.8, 0.82], "meta": {"name": "zoë", "ok": True, "n": None}},
        [1, [2, [3, {"four": 4.0}]]],
        "plain text",
        10**30,  # a Python int of any size
        -0.0,
        1.0,  # stays a float
        False,
        None,
    ],
    ids=["nested-dict", "nested-list", "str", "big-int", "neg-zero", "float-one", "bool", "none"],
)
def test_json_values_round_trip_exactly(sqlite_client: Any, value: Any) -> None:
    ref, back = roundtrip(value, sqlite_client)
    assert ref.materializer == "json/1"
    assert back == value and type(back) is type(value)
    if isinstance(value, float):
        assert math.copysign(1.0, back) == math.copysign(1.0, value)


def test_json_digest_is_deterministic_and_ignores_key_order(sqlite_client: Any) -> None:
    a = mz.save({"b": [1, 2], "a": {"y": 1, "x": 2}}, sqlite_client.objects)
    b = mz.save({"a": {"x": 2, "y": 1}, "b": [1, 2]}, sqlite_client.objects)
    assert a.digest == b.digest
    assert mz.save({"a": {"x": 2, "y": 1}, "b": [2, 1]}, sqlite_client.objects).digest != a.digest


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        {"loss": -math.inf},
        (1, 2),
        {"pair": (1, 2)},
        {1: "one"},
        {("a", "b"): 1},
        {1, 2},
        b"bytes",
        np.float64(0.5),
        np.int64(3),
    ],
    ids=[
        "nan",
        "inf",
        "nested-inf",
        "tuple",
        "nested-tuple",
        "int-key",
        "tuple-key",
        "set",
        "bytes",
        "np-float64",
        "np-int64",
    ],
)
def test_values_json_would_change_are_pickled_not_json(sqlite_client: Any, value: Any) -> None:
    assert mz.materializer_for(value).name == "pickle"
    with pytest.warns(PickledOutputWarning, match="cloudpickle"):
        ref, back = roundtrip(value, sqlite_client)
    assert ref.materializer == "pickle/1"
    assert type(back) is type(value)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value


def test_json_materializer_refuses_strings_utf8_cannot_encode(sqlite_client: Any) -> None:
    value = {"path": "caf\udce9.csv"}  # what os.fsdecode makes of a latin-1 file name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PickledOutputWarning)  # a fallback may pickle it
        _, back = roundtrip(value, sqlite_client)
    assert back == value


# --- pickle and unknown materializers -----------------------------------------------------


@dataclass
class Thresholds:
    low: float
    high: float


def test_anything_else_is_pickled_with_a_warning(sqlite_client: Any) -> None:
    value = Thresholds(0.2, 0.8)
    with pytest.warns(PickledOutputWarning, match=r"of type .*Thresholds has no portable format"):
        ref = mz.save(value, sqlite_client.objects, what="output 'cut' of step 'tune'")
    assert ref.materializer == "pickle/1"
    assert ref.type.endswith(".Thresholds")
    assert mz.load(ref, sqlite_client.objects) == value


def test_pickled_output_warning_names_the_output(sqlite_client: Any) -> None:
    with pytest.warns(PickledOutputWarning, match=r"^output 'cut' of step 'tune' of type"):
        mz.save(Thresholds(0.1, 0.9), sqlite_client.objects, what="output 'cut' of step 'tune'")


def test_portable_values_do_not_warn(sqlite_client: Any, mz_frame: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in (mz_frame, mz_frame["score"], np.arange(3), {"a": [1]}):
            assert mz.save(value, sqlite_client.objects).materializer != "pickle/1"


def test_load_with_an_unknown_materializer_names_it(sqlite_client: Any) -> None:
    stored = sqlite_client.objects.put_bytes(b"whatever")
    ref = ArtifactRef(
        digest=stored.digest, kind="file", materializer="feather/7", type="pandas.DataFrame"
    )
    with pytest.raises(InvalidInput, match=r"materializer 'feather/7'.*upgrade ctloop") as info:
        mz.load(ref, sqlite_client.objects)
    assert stored.digest[:12] in str(info.value)
    assert "dataframe/1" in str(info.value)  # the ones it knows


def test_step_output_round_trips_through_a_pipeline_run(sqlite_client: Any, mz_frame: Any) -> None:
    """The same materializers carry real step outputs: the frame a step returns loads back."""
    from ctloop import pipeline, step

    @step(outputs=("frame", "column", "matrix", "summary"))
    def produce() -> tuple[Any, Any, Any, Any]:
        return mz_frame, mz_frame["calls"], np.eye(2), {"rows": len(mz_frame)}

    @pipeline
    def mz_outputs() -> None:
        produce()

    run = mz_outputs.run(executor="inline", client=sqlite_client)
    outputs = run.step("produce").outputs
    assert {k: v.materializer for k, v in outputs.items()} == {
        "frame": "dataframe/1",
        "column": "series/1",
        "matrix": "ndarray/1",
        "summary": "json/1",
    }
    pd.testing.assert_frame_equal(run.output("produce", "frame"), mz_frame)
    pd.testing.assert_series_equal(run.output("produce", "column"), mz_frame["calls"])
    np.testing.assert_array_equal(run.output("produce", "matrix"), np.eye(2))
    assert run.output("produce", "summary") == {"rows": 3}
