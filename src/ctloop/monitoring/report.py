"""A monitoring report: drift, performance and health of one window, as JSON and HTML.

:func:`build_report` compares a current window with a reference, column by column (the
:class:`~ctloop.monitoring.detectors.DatasetDriftDetector`), and counts both over the
reference's bins (a :class:`~ctloop.monitoring.profiles.ReferenceProfile` and its window)
so the page can draw the two histograms over the same bins. Performance and health
results computed elsewhere (:mod:`ctloop.monitoring.performance`,
:mod:`ctloop.monitoring.estimation`) ride along. A :class:`Report` holds plain JSON
values only, so it is stored as is; :func:`ctloop.monitoring.html.render_html` draws it.
"""

from __future__ import annotations

import math
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.monitoring.detectors import P_VALUE_METHODS

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.monitoring.estimation import EstimatedPerformance
    from ctloop.monitoring.performance import HealthRow, WindowPerformance

__all__ = ["REPORT_VERSION", "Report", "build_report", "column_histogram", "severity"]

#: The version of the JSON layout written by ``to_dict``; ``from_dict`` refuses newer ones.
REPORT_VERSION = 1

#: Categories drawn per categorical column; the rarest of the rest are summed as "(other)".
MAX_CHART_CATEGORIES = 20

#: The label of the bar that sums the categories left out of a chart.
OTHER = "(other)"


def _plain(value: Any) -> Any:
    """``value`` as plain JSON: NaN and ±inf become None, tuples lists, keys text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _plain(value.item())
    return value


def severity(result: Mapping[str, Any]) -> float:
    """How far a column's drift result is past its threshold: 1 is at the threshold.

    Distances give ``score / threshold``; tests give ``log p / log threshold``, so that
    p = 0.0005 against 0.05 counts as about 2.5. None or NaN scores give 0.
    """
    method = result.get("method")
    threshold = result.get("threshold")
    if not threshold or threshold <= 0:
        return 0.0
    if method in P_VALUE_METHODS:
        p = result.get("p_value")
        if p is None or not math.isfinite(p) or threshold >= 1:
            return 0.0
        return math.log(max(p, 1e-300)) / math.log(threshold)
    score = result.get("score")
    if score is None or math.isnan(score):
        return 0.0
    return math.inf if math.isinf(score) else score / threshold


@dataclass
class Report:
    """A monitoring report of one window against a reference; every field is plain JSON.

    Attributes:
        id: a random hex id.
        created_at: when it was built (UTC).
        deployment: the deployment monitored, or None for two files compared.
        reference, window: what was compared: ``rows``, ``columns``, ``start``/``end``
            (ISO 8601, when the data has a time column, else None) and ``source``.
        dataset_drift: :meth:`DatasetDrift.to_dict` of the feature columns.
        histograms: per tested column, what the charts draw: numeric ``edges`` with
            ``reference`` and ``current`` counts over the same ``len(edges) + 1`` bins
            (the first and last are the underflow and overflow); categorical
            ``categories`` with the counts of each.
        prediction_drift: :meth:`DriftResult.to_dict` of the prediction column, or None.
        multivariate: :meth:`MultivariateDrift.to_dict`, or None.
        label_drift: :meth:`DriftResult.to_dict` of the labels that arrived as feedback
            against the reference's labels, or None.
        realised_performance: :meth:`WindowPerformance.to_dict` per window, or None.
        estimated_performance: :meth:`EstimatedPerformance.to_dict` per window, each
            with its ``start`` and ``end``, or None.
        health: :meth:`HealthRow.to_dict` per row, or None.
    """

    id: str
    created_at: datetime
    reference: dict[str, Any]
    window: dict[str, Any]
    dataset_drift: dict[str, Any]
    histograms: list[dict[str, Any]] = field(default_factory=list)
    deployment: str | None = None
    prediction_drift: dict[str, Any] | None = None
    multivariate: dict[str, Any] | None = None
    label_drift: dict[str, Any] | None = None
    realised_performance: list[dict[str, Any]] | None = None
    estimated_performance: list[dict[str, Any]] | None = None
    health: list[dict[str, Any]] | None = None

    @property
    def drifted(self) -> bool:
        """The dataset verdict: at least ``drift_share`` of the columns drifted."""
        return bool(self.dataset_drift.get("drifted"))

    @property
    def drifted_columns(self) -> list[str]:
        """The drifted columns, furthest past their threshold first."""
        drifted = [c for c in self.dataset_drift.get("columns", []) if c.get("drifted")]
        return [c["column"] for c in sorted(drifted, key=lambda c: -severity(c))]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values (NaN and infinity as null)."""
        return {
            "version": REPORT_VERSION,
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "deployment": self.deployment,
            "reference": _plain(self.reference),
            "window": _plain(self.window),
            "dataset_drift": _plain(self.dataset_drift),
            "prediction_drift": _plain(self.prediction_drift),
            "multivariate": _plain(self.multivariate),
            "label_drift": _plain(self.label_drift),
            "realised_performance": _plain(self.realised_performance),
            "estimated_performance": _plain(self.estimated_performance),
            "health": _plain(self.health),
            "histograms": _plain(self.histograms),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """A report from :meth:`to_dict`'s output.

        Raises:
            InvalidInput: not a report, or written by a newer ctloop.
        """
        version = data.get("version")
        if not isinstance(version, int) or version > REPORT_VERSION:
            raise InvalidInput(
                f"report layout version {version!r} is not readable by this ctloop (it reads "
                f"up to {REPORT_VERSION}); upgrade ctloop to read it"
            )
        missing = [k for k in ("id", "created_at", "dataset_drift") if k not in data]
        if missing:
            raise InvalidInput(f"not a report: it lacks {', '.join(missing)}")
        return cls(
            id=str(data["id"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            deployment=data.get("deployment"),
            reference=dict(data.get("reference") or {}),
            window=dict(data.get("window") or {}),
            dataset_drift=dict(data["dataset_drift"]),
            prediction_drift=data.get("prediction_drift"),
            multivariate=data.get("multivariate"),
            label_drift=data.get("label_drift"),
            realised_performance=data.get("realised_performance"),
            estimated_performance=data.get("estimated_performance"),
            health=data.get("health"),
            histograms=list(data.get("histograms") or []),
        )


def build_report(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    drift_share: float = 0.5,
    methods: str | Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    bins: int = 10,
    prediction_column: str | None = "prediction",
    time_column: str | None = None,
    multivariate: bool = False,
    realised: Sequence[WindowPerformance] | None = None,
    estimated: EstimatedPerformance | None = None,
    health: Sequence[HealthRow] | None = None,
    deployment: str | None = None,
    reference_source: str | None = None,
    current_source: str | None = None,
) -> Report:
    """Compare ``current_df`` with ``reference_df`` and gather the result in a :class:`Report`.

    Args:
        reference_df, current_df: the two windows.
        columns: the feature columns to test; default: every column both frames have
            except the prediction and time columns and identifiers (text columns whose
            reference values are all distinct, listed in ``skipped``).
        drift_share: the dataset drifted when at least this share of the columns did.
        methods, thresholds: as :class:`~ctloop.monitoring.detectors.DatasetDriftDetector`.
        bins: quantile bins of the reference for the charts (and the histogram methods).
        prediction_column: tested on its own (``prediction_drift``) when both frames have it.
        time_column: gives the windows' start and end; default: the first datetime column.
        multivariate: also run the domain classifier (needs scikit-learn; seconds).
        realised, estimated, health: results of :mod:`ctloop.monitoring.performance` and
            :mod:`ctloop.monitoring.estimation` to include.
        deployment: the deployment monitored, if any.
        reference_source, current_source: where the data came from (a file, a version).

    Raises:
        InvalidInput: no column in common, a named column missing, or bad options.
    """
    from ctloop.monitoring.detectors import ColumnDriftDetector, DatasetDriftDetector
    from ctloop.monitoring.profiles import ReferenceProfile

    time_column = time_column or _time_column(current_df) or _time_column(reference_df)
    skipped: dict[str, str] = {}
    if columns is None:
        common = [str(c) for c in reference_df.columns if c in current_df.columns]
        if not common:
            raise InvalidInput(
                "the reference and the current data have no column in common "
                f"(reference: {_names(reference_df)}; current: {_names(current_df)})"
            )
        columns = []
        for name in common:
            if name in (prediction_column, time_column):
                continue
            if _is_identifier(reference_df[name]):
                skipped[name] = "looks like an identifier (every value distinct); name it to test"
                continue
            columns.append(name)
        if not columns:
            raise InvalidInput(
                f"no feature column to compare: the common columns ({', '.join(common)}) are "
                "the prediction, the time or identifiers; pass the columns to test"
            )
    columns = list(columns)
    absent = [c for c in columns if c not in reference_df.columns or c not in current_df.columns]
    if absent:
        raise InvalidInput(
            f"columns {', '.join(absent)} are not in both files; "
            f"the reference has: {_names(reference_df)}; the current data has: "
            f"{_names(current_df)}"
        )
    detector = DatasetDriftDetector(
        methods=methods,
        thresholds=thresholds,
        drift_share=drift_share,
        columns=columns,
        bins=bins,
    ).fit(reference_df)
    drift = detector.score(current_df)
    drift_dict = drift.to_dict()
    drift_dict["skipped"] = {**skipped, **drift_dict["skipped"]}

    tested = [r.column for r in drift.columns]
    histograms: list[dict[str, Any]] = []
    if tested:
        profile = ReferenceProfile.from_frame(
            reference_df, columns=tested, bins=bins, sample_size=0, kinds=detector.kinds_
        )
        window = profile.window(current_df[tested], sample_size=0)
        histograms = [
            _histogram(profile.columns[c], window.columns[c])
            for c in tested
            if c in profile.columns and c in window.columns
        ]

    prediction = None
    if (
        prediction_column
        and prediction_column in reference_df.columns
        and prediction_column in current_df.columns
    ):
        try:
            fitted = ColumnDriftDetector().fit(reference_df[prediction_column])
            prediction = fitted.score(current_df[prediction_column]).to_dict()
        except InvalidInput as exc:
            drift_dict["skipped"][prediction_column] = exc.message

    multi = None
    if multivariate and tested:
        from ctloop.monitoring.multivariate import domain_classifier

        multi = domain_classifier(reference_df, current_df, columns=tested).to_dict()

    window_info = _describe(current_df, time_column, current_source)
    estimated_list = None
    if estimated is not None:
        estimated_list = [
            {"start": window_info["start"], "end": window_info["end"], **estimated.to_dict()}
        ]
    return Report(
        id=uuid.uuid4().hex,
        created_at=datetime.now(UTC),
        deployment=deployment,
        reference=_describe(reference_df, time_column, reference_source),
        window=window_info,
        dataset_drift=drift_dict,
        histograms=histograms,
        prediction_drift=prediction,
        multivariate=multi,
        realised_performance=None if realised is None else [w.to_dict() for w in realised],
        estimated_performance=estimated_list,
        health=None if health is None else [h.to_dict() for h in health],
    )


def _names(df: pd.DataFrame) -> str:
    names = [str(c) for c in df.columns]
    shown = ", ".join(names[:20])
    return (shown + f", … ({len(names)} in all)") if len(names) > 20 else (shown or "none")


def _time_column(df: pd.DataFrame) -> str | None:
    import pandas as pd

    for name in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[name]):
            return str(name)
    return None


def _is_identifier(values: pd.Series) -> bool:
    """Text whose values are all distinct (ids, e-mails): every window would "drift"."""
    import pandas as pd

    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    present = values.dropna()
    return len(present) >= 50 and present.nunique() == len(present)


def _describe(df: pd.DataFrame, time_column: str | None, source: str | None) -> dict[str, Any]:
    import pandas as pd

    start = end = None
    if time_column and time_column in df.columns and len(df):
        # a CSV holds times as text: parse them, and leave the bounds out if they are not
        with warnings.catch_warnings():  # "could not infer format" on odd text
            warnings.simplefilter("ignore")
            times = pd.to_datetime(df[time_column], errors="coerce", utc=True).dropna()
        if len(times):
            start, end = times.min().isoformat(), times.max().isoformat()
    return {
        "rows": len(df),
        "columns": len(df.columns),
        "start": start,
        "end": end,
        "source": source,
    }


def column_histogram(reference: Any, current: Any) -> dict[str, Any]:
    """One entry of :attr:`Report.histograms` from a reference column profile and the
    window's count of it (:class:`~ctloop.monitoring.profiles.NumericColumn` or
    :class:`~ctloop.monitoring.profiles.CategoricalColumn`, same kind)."""
    return _histogram(reference, current)


def _histogram(ref: Any, cur: Any) -> dict[str, Any]:
    """The chart data of one column: both sides counted over the reference's bins."""
    from ctloop.monitoring.profiles import NumericColumn

    if isinstance(ref, NumericColumn):
        return {
            "column": ref.name,
            "kind": "numeric",
            "edges": [float(e) for e in ref.edges],
            "reference": [int(c) for c in ref.counts],
            "current": [int(c) for c in cur.counts],
            "reference_missing": ref.missing,
            "current_missing": cur.missing,
        }
    ref_counts: dict[str, int] = dict(ref.categories)
    cur_counts: dict[str, int] = dict(cur.categories)
    ranked = sorted(
        set(ref_counts) | set(cur_counts),
        key=lambda c: (-(ref_counts.get(c, 0) + cur_counts.get(c, 0)), c),
    )
    shown, rest = ranked[:MAX_CHART_CATEGORIES], ranked[MAX_CHART_CATEGORIES:]
    categories = list(shown)
    reference = [ref_counts.get(c, 0) for c in shown]
    current = [cur_counts.get(c, 0) for c in shown]
    ref_other = ref.other + sum(ref_counts.get(c, 0) for c in rest)
    cur_other = cur.other + sum(cur_counts.get(c, 0) for c in rest)
    if ref_other or cur_other:
        categories.append(OTHER)
        reference.append(ref_other)
        current.append(cur_other)
    return {
        "column": ref.name,
        "kind": "categorical",
        "categories": categories,
        "reference": reference,
        "current": current,
        "reference_missing": ref.missing,
        "current_missing": cur.missing,
    }
