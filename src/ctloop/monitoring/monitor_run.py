"""One run of a monitor: a window of the prediction log against a model's reference.

The pieces behind ``ctloop monitor run``, free of any store:

- :func:`report_from_profiles` — the :class:`~ctloop.monitoring.report.Report`
  :func:`~ctloop.monitoring.report.build_report` gives, computed from a reference profile
  and a window profile only, so its cost does not grow with the rows behind them;
- :func:`evaluate_window` — the report of one window of the raw prediction log (and of its
  feedback): drift of the features and of the predictions, realised performance where
  labels arrived, estimated performance where they did not, and serving health;
- :func:`observations` — what alert rules read, rebuilt from a (stored) report.

The reference comes from :func:`ctloop.monitoring.reference.build_reference`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.monitoring.profiles import ReferenceProfile, WindowProfile
from ctloop.monitoring.reference import (
    PREDICTION,
    MonitorReference,
    feature_column,
    prediction_values,
)
from ctloop.monitoring.report import Report, column_histogram
from ctloop.monitoring.results import DatasetDrift, DriftResult

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.monitoring.estimation import EstimatedPerformance
    from ctloop.monitoring.performance import HealthRow, WindowPerformance
    from ctloop.monitoring.rules import Observations

__all__ = ["MAX_ESTIMATED_ROWS", "evaluate_window", "observations", "report_from_profiles"]

Methods = str | Mapping[str, str] | None

#: Window rows the performance estimate is computed on at most (a uniform sample beyond).
MAX_ESTIMATED_ROWS = 20_000


def report_from_profiles(
    reference: ReferenceProfile,
    window: WindowProfile,
    *,
    drift_share: float = 0.5,
    methods: Methods = None,
    thresholds: Mapping[str, float] | None = None,
    deployment: str | None = None,
    reference_source: str | None = None,
    current_source: str | None = None,
    window_info: Mapping[str, Any] | None = None,
    prediction_column: str | None = PREDICTION,
    realised: Sequence[WindowPerformance] | None = None,
    estimated: EstimatedPerformance | None = None,
    health: Sequence[HealthRow] | None = None,
) -> Report:
    """The report of ``window`` against ``reference``, from the two profiles only.

    The feature columns are the reference's columns except ``prediction_column`` and
    ``p.<class>`` probability columns (model outputs, not inputs). They are tested as
    :func:`~ctloop.monitoring.profile_drift.drift` tests them (the methods
    :func:`~ctloop.monitoring.report.build_report` would choose; exact where the
    profiles' samples hold every value) and drawn over the reference's bins. The
    prediction column is tested on its own (``prediction_drift``) with the automatic
    method, unless ``methods``/``thresholds`` name it.

    Args:
        reference: the reference profile.
        window: the window counted over it (``reference.window(...)``, or merged windows).
        drift_share: the dataset drifted when at least this share of the features did.
        methods, thresholds: as for :func:`~ctloop.monitoring.profile_drift.drift`.
        deployment: the deployment monitored, if any.
        reference_source, current_source: where the data came from.
        window_info: more about the window (``start``, ``end``, ``spec`` …), merged into
            ``Report.window``.
        prediction_column: the profile column of the predictions (None: none).
        realised, estimated, health: performance and health results to include.

    Raises:
        InvalidInput: bad methods, thresholds or ``drift_share``, or a window whose bins
            are not the reference's.
    """
    from ctloop.monitoring.profile_drift import drift

    features = [c for c in reference.columns if c != prediction_column and not c.startswith("p.")]
    outputs = {prediction_column} if prediction_column else set()
    feature_ref = ReferenceProfile(
        columns={c: reference.columns[c] for c in features},
        skipped={k: v for k, v in reference.skipped.items() if k not in outputs},
    )
    feature_methods: Methods = methods
    if isinstance(methods, Mapping):
        feature_methods = {k: v for k, v in methods.items() if k not in outputs}
    feature_thresholds = {k: v for k, v in (thresholds or {}).items() if k not in outputs}
    result = drift(
        feature_ref,
        window,
        methods=feature_methods,
        thresholds=feature_thresholds,
        drift_share=drift_share,
    )
    drift_dict = result.to_dict()

    prediction = None
    if prediction_column and prediction_column in reference.columns:
        if prediction_column in window.columns:
            own = ReferenceProfile(columns={prediction_column: reference[prediction_column]})
            named = methods.get(prediction_column) if isinstance(methods, Mapping) else None
            limit = (thresholds or {}).get(prediction_column)
            (prediction_result,) = drift(
                own,
                window,
                methods={prediction_column: named} if named else None,
                thresholds={prediction_column: limit} if limit is not None else None,
            ).columns
            prediction = prediction_result.to_dict()
        else:
            why = window.skipped.get(prediction_column, "not in the window")
            drift_dict["skipped"][prediction_column] = why

    histograms = [
        column_histogram(reference.columns[r.column], window.columns[r.column])
        for r in result.columns
    ]
    reference_info = {
        "rows": reference.rows,
        "columns": len(reference.columns),
        "start": None,
        "end": None,
        "source": reference_source,
    }
    info = {
        "rows": window.rows,
        "columns": len(window.columns),
        "start": None,
        "end": None,
        "source": current_source,
        **{str(k): _plain_time(v) for k, v in (window_info or {}).items()},
    }
    estimated_list = None
    if estimated is not None:
        estimated_list = [{"start": info["start"], "end": info["end"], **estimated.to_dict()}]
    return Report(
        id=uuid.uuid4().hex,
        created_at=datetime.now(UTC),
        deployment=deployment,
        reference=reference_info,
        window=info,
        dataset_drift=drift_dict,
        histograms=histograms,
        prediction_drift=prediction,
        realised_performance=None if realised is None else [w.to_dict() for w in realised],
        estimated_performance=estimated_list,
        health=None if health is None else [h.to_dict() for h in health],
    )


def evaluate_window(
    reference: MonitorReference,
    predictions: pd.DataFrame,
    joined: pd.DataFrame | None = None,
    *,
    deployment: str,
    drift_share: float = 0.5,
    features: Sequence[str] | None = None,
    methods: Methods = None,
    thresholds: Mapping[str, float] | None = None,
    window_info: Mapping[str, Any] | None = None,
    reference_rows: pd.DataFrame | None = None,
) -> Report:
    """The monitoring report of one window of a deployment's prediction log.

    - Drift: rows served without error and not by a shadow are counted over the
      reference's bins (features from the ``f.<name>`` columns); the predictions only
      from rows the reference's model version answered (another version's predictions
      would differ for reasons other than drift).
    - Realised performance: from ``joined`` (the log with its feedback), when any row
      has a label or value.
    - Estimated performance: for a classifier whose reference carries estimation data,
      from the ``p.<class>`` columns of the rows the reference's version answered.
    - Label drift: the labels of ``joined`` against the reference's labels (those kept
      for estimation), when both exist.
    - Multivariate drift: with ``reference_rows`` (a sample of the reference data), a
      domain classifier tells reference rows from the window's.
    - Health: every row, shadows and errors included.

    What could not be computed, and why, is listed in ``Report.window["notes"]``.

    Args:
        reference: from :func:`~ctloop.monitoring.reference.build_reference`.
        predictions: the prediction log of the window (``client.deployments.predictions``).
        joined: the same window with feedback (``client.deployments.joined``), or None.
        deployment: the deployment's name.
        drift_share: the dataset drifted when at least this share of the features did.
        features: the reference features to test (default: all of them).
        methods, thresholds: as for :func:`report_from_profiles`.
        window_info: ``start``, ``end`` and what else describes the window (e.g. the
            monitor's ``spec``: ``1h``, ``last:5000``), copied into ``Report.window``.
        reference_rows: reference data with the feature columns, for the domain
            classifier (seconds of work); None skips multivariate drift.

    Raises:
        InvalidInput: an empty window, or features the reference does not have.
    """
    info = dict(window_info or {})
    if len(predictions) == 0:
        start = _plain_time(info.get("start")) or "the start of the log"
        end = _plain_time(info.get("end")) or "now"
        raise InvalidInput(
            f"no predictions logged for {deployment} between {start} and {end}; check that "
            "the deployment serves traffic with payload logging on, or widen the window"
        )
    names = _checked_features(reference, features)
    notes: list[str] = []
    served = _served(predictions)
    own = served
    if "model_version" in served.columns:
        own = served[served["model_version"].astype("string") == reference.version]

    columns = [feature_column(n) for n in names]
    window = _feature_window(reference, served, names)
    if PREDICTION in reference.profile.columns and "prediction" not in predictions.columns:
        window.skipped[PREDICTION] = "the prediction log has no prediction column"
    elif PREDICTION in reference.profile.columns:
        if len(own) or not len(served):
            pred_ref = ReferenceProfile(columns={PREDICTION: reference.profile[PREDICTION]})
            values = prediction_values(own["prediction"], reference.task)
            window = window.merge(pred_ref.window(_frame({PREDICTION: values})))
        else:
            why = (
                f"no row of the window was answered by {reference.model}, the reference's "
                "model; rebuild the reference for the version now served"
            )
            window.skipped[PREDICTION] = why
            notes.append(f"prediction drift and estimated performance: {why}")

    if "start" not in info and "timestamp" in predictions.columns:
        import pandas as pd

        times = pd.to_datetime(predictions["timestamp"], utc=True).dropna()
        if len(times):
            info["start"], info["end"] = times.min().isoformat(), times.max().isoformat()
    sub = ReferenceProfile(
        columns={
            c: reference.profile.columns[c]
            for c in [*columns, PREDICTION]
            if c in reference.profile.columns
        },
        skipped={k: v for k, v in reference.profile.skipped.items() if k in columns},
    )
    from ctloop.monitoring.performance import realised_performance, serving_health

    realised = None
    if joined is not None and _has_truth(joined):
        realised = realised_performance(joined, task=reference.task)
    estimated = _estimate(reference, own, notes)
    report = report_from_profiles(
        sub,
        window,
        drift_share=drift_share,
        methods=methods,
        thresholds=thresholds,
        deployment=deployment,
        reference_source=f"{reference.model} on {reference.source}",
        current_source=f"prediction log of {deployment}",
        window_info=info,
        realised=realised,
        estimated=estimated,
        health=serving_health(predictions),
    )
    report.label_drift = _label_drift(reference, joined, notes)
    if reference_rows is not None:
        report.multivariate = _multivariate(reference_rows, served, names, notes)
    report.window["rows"] = len(served)
    report.window["logged_rows"] = len(predictions)
    if notes:
        report.window["notes"] = notes
    return report


def observations(report: Report) -> Observations:
    """What the alert rules read, rebuilt from a report (or one read back from JSON).

    Rules see the values the report holds: the feature drift, every realised window, the
    estimate of the (last) window and the health rows. A missing score (JSON null) is NaN.
    """
    from ctloop.monitoring.estimation import EstimatedPerformance, MetricEstimate
    from ctloop.monitoring.performance import HealthRow, VersionPerformance, WindowPerformance
    from ctloop.monitoring.rules import Observations

    d = report.dataset_drift
    dataset_drift = None
    if d:
        dataset_drift = DatasetDrift(
            columns=[_drift_result(c) for c in d.get("columns", [])],
            drift_share=float(d.get("drift_share", 0.5)),
            drifted_share=float(d.get("drifted_share") or 0.0),
            drifted=bool(d.get("drifted")),
            skipped=dict(d.get("skipped") or {}),
        )
    performance = None
    if report.realised_performance is not None:
        performance = [
            WindowPerformance(
                **_known(WindowPerformance, w),
                start=_time(w.get("start")),
                end=_time(w.get("end")),
                by_version=[
                    VersionPerformance(**_known(VersionPerformance, v))
                    for v in w.get("by_version", [])
                ],
            )
            for w in report.realised_performance
        ]
    estimated = None
    if report.estimated_performance:
        last = report.estimated_performance[-1]
        estimated = EstimatedPerformance(
            rows=int(last.get("rows", 0)),
            z=float(last.get("z", 2.0)),
            metrics={
                name: MetricEstimate(**_known(MetricEstimate, m))
                for name, m in dict(last.get("metrics") or {}).items()
            },
        )
    health = None
    if report.health is not None:
        health = [
            HealthRow(
                **_known(HealthRow, h),
                start=_time(h.get("start")),
                end=_time(h.get("end")),
                error_rate=_float(h.get("error_rate")),
            )
            for h in report.health
        ]
    return Observations(
        deployment=report.deployment or "",
        dataset_drift=dataset_drift,
        performance=performance,
        estimated=estimated,
        health=health,
        report_id=report.id,
    )


# --- helpers --------------------------------------------------------------------------------


def _checked_features(reference: MonitorReference, features: Sequence[str] | None) -> list[str]:
    if features is None:
        return list(reference.features)
    if isinstance(features, str):
        features = [features]
    unknown = [f for f in features if f not in reference.features]
    if unknown:
        raise InvalidInput(
            f"features {unknown} are not in the reference of {reference.model}; "
            f"it has: {', '.join(reference.features)}"
        )
    wanted = set(features)
    return [f for f in reference.features if f in wanted]


def _served(predictions: pd.DataFrame) -> pd.DataFrame:
    """Rows answered without error and not by a shadow (a shadow's features are a copy
    of a served row's, so they would count twice)."""
    from ctloop.monitoring.windows import SHADOW

    keep = predictions
    if "status" in keep.columns:
        keep = keep[keep["status"].fillna("ok") == "ok"]
    if "variant" in keep.columns:
        keep = keep[keep["variant"].fillna("") != SHADOW]
    return keep


def _frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(dict(columns))


def _feature_window(
    reference: MonitorReference, served: pd.DataFrame, names: list[str]
) -> WindowProfile:
    """The window of the features; a feature the log lacks is listed in ``skipped``."""
    columns = [feature_column(n) for n in names]
    sub = ReferenceProfile(
        columns={c: reference.profile.columns[c] for c in columns if c in reference.profile.columns}
    )
    present = {
        feature_column(n): served[f"f.{n}"].reset_index(drop=True)
        for n in names
        if f"f.{n}" in served.columns and feature_column(n) in sub.columns
    }
    window = sub.window(_frame(present)) if present else sub.empty_window()
    for name in sub.columns:
        if name not in present:
            window.columns.pop(name, None)
            window.skipped[name] = "not in the prediction log"
    return window


def _label_drift(
    reference: MonitorReference, joined: pd.DataFrame | None, notes: list[str]
) -> dict[str, Any] | None:
    """The feedback labels against the reference's, as one categorical column."""
    import pandas as pd

    from ctloop.monitoring.detectors import ColumnDriftDetector

    if joined is None or "label" not in joined.columns or not joined["label"].notna().any():
        return None
    known = (reference.estimation or {}).get("labels")
    if not known:
        notes.append("label drift: the reference keeps no labels (see the reference's notes)")
        return None
    ref = pd.Series([str(v) for v in known], name="label", dtype="string")
    cur = pd.Series([str(v) for v in joined["label"].dropna()], name="label", dtype="string")
    detector = ColumnDriftDetector(kind="categorical").fit(ref)
    return detector.score(cur).to_dict()


def _multivariate(
    reference_rows: pd.DataFrame, served: pd.DataFrame, names: list[str], notes: list[str]
) -> dict[str, Any] | None:
    """The domain classifier on the features both samples have."""
    from ctloop.monitoring.multivariate import domain_classifier

    common = [n for n in names if n in reference_rows.columns and f"f.{n}" in served.columns]
    if not common or len(served) < 20:
        notes.append("multivariate drift: needs 20 rows and a feature both samples have")
        return None
    current = _frame({n: served[f"f.{n}"].reset_index(drop=True) for n in common})
    reference = reference_rows[common]
    if len(reference) > max(len(current), 1000):  # balanced samples: as sharp, and faster
        reference = reference.sample(max(len(current), 1000), random_state=0)
    reference = reference.reset_index(drop=True)
    return domain_classifier(reference, current, columns=common).to_dict()


def _has_truth(joined: pd.DataFrame) -> bool:
    return any(c in joined.columns and joined[c].notna().any() for c in ("label", "value"))


def _estimate(
    reference: MonitorReference, own: pd.DataFrame, notes: list[str]
) -> EstimatedPerformance | None:
    """Estimated performance of the rows the reference's version answered, or None."""
    import numpy as np

    from ctloop.monitoring.reference import fit_estimator

    if reference.estimation is None or not len(own):
        return None
    classes = [str(c) for c in reference.estimation.get("classes") or []]
    missing = [f"p.{c}" for c in classes if f"p.{c}" not in own.columns]
    if missing:
        notes.append(f"estimated performance: the log has no probability columns {missing}")
        return None
    scores = own[[f"p.{c}" for c in classes]].astype("float64")
    scores = scores[np.isfinite(scores.to_numpy()).all(axis=1)]
    if not len(scores):
        notes.append("estimated performance: no row of the window logged its probabilities")
        return None
    try:
        estimator = fit_estimator(reference.estimation)
    except InvalidInput as exc:
        notes.append(f"estimated performance: {exc.message}")
        return None
    if len(scores) > MAX_ESTIMATED_ROWS:
        # the band's bootstrap costs (window rows x chunks); past this size the estimate
        # of a uniform sample differs from the whole window's by far less than the band
        rows = np.sort(
            np.random.default_rng(0).choice(len(scores), MAX_ESTIMATED_ROWS, replace=False)
        )
        notes.append(
            f"estimated performance: from a uniform sample of {MAX_ESTIMATED_ROWS} of the "
            f"{len(scores)} rows (its band is that of the sample, so slightly wide)"
        )
        scores = scores.iloc[rows]
    return estimator.estimate(scores)


def _drift_result(c: Mapping[str, Any]) -> DriftResult:
    out = _known(DriftResult, c)
    out.update(score=_float(c.get("score")), threshold=_float(c.get("threshold")))
    return DriftResult(**out)


def _known(cls: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of dataclass ``cls``, except the times and
    nested results the caller converts (a newer layout's extra keys are ignored)."""
    from dataclasses import fields

    own = {"start", "end", "by_version", "error_rate", "score", "threshold"}
    return {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name not in own}


def _float(value: Any, default: float = math.nan) -> float:
    return default if value is None else float(value)


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _plain_time(value: Any) -> Any:
    """Times as ISO 8601 text, so the report stays plain JSON."""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat") and callable(value.isoformat):  # pandas Timestamp, date
        return value.isoformat()
    return value
