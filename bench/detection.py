"""Benchmark: drift detection on the churn stream — delay, false alarms, time per window.

Run from the repository root (no peer: the test environment works too)::

    .venv-bench/bin/python bench/detection.py            # 20 seeds, ~1 min
    .venv-bench/bin/python bench/detection.py --quick    # 1 seed, ~5 s

The data is ``ctloop.datasets.churn``. The reference is the first ``--reference`` rows
(10,000) without drift; the stream is the ``--windows`` windows of ``--window-rows`` rows
that follow them (100 x 1,000: rows 10,000-109,999), with six drifts at known rows, each
with an end (rows after a drift's end are bit-for-bit the undrifted table):

* a sudden covariate shift of a numeric feature (``monthly_charges`` + 15),
* a covariate shift of a categorical feature (``contract``: 80 % month-to-month),
* a gradual covariate shift (``tenure_months`` x 0.6, ramped in over 5 windows),
* missing values injected into a feature (``data_usage_gb``: 30 % NaN, a broken feed),
* a prior shift (``base_rate=0.5``: how many churn, not who; features unchanged),
* a concept drift (``contract`` term reversed: P(churn | x) changes, features unchanged).

Drift starts fall inside a window where that makes the delay informative. Only the
feature columns (``churn.FEATURES``, 12 of them) are monitored; ids, times and the label
are not.

Detectors, all in their DEFAULT configuration (automatic method per column: normalised
Wasserstein >= 0.1 for numeric, Jensen-Shannon >= 0.1 for categorical columns, since the
reference has more than 1,000 values; ``drift_share=0.5``):

* ``detector``: ``DatasetDriftDetector().fit(reference)``, then ``score(window)``;
* ``profile``: ``ReferenceProfile.from_frame(reference)``, then
  ``drift(reference_profile, reference_profile.window(window))`` (counts and samples).

Each is read at two levels: ``dataset`` (the table verdict, ``DatasetDrift.drifted``: at
least half of the tested columns drifted) and ``feature`` (any column flagged).

Per drift: the first window that overlaps the drift's rows and is flagged, and the delay
in rows, ``window end - drift start`` (the rows a monitor has to wait for); a drift not
flagged while it lasts is ``not flagged``. False alarms: flagged windows among the windows
with no drifted row (before the first drift, in the gaps between drifts and after the
last), per 100 such windows. Time per window: wall time of ``score`` (detector) and of
``window`` + ``drift`` (profile), excluding generating the data. With several seeds every
seed is a different table (reference and stream); the summary pools them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (bench/ is not a package; see the sys.path line)
    OtherLoad,
    Stopwatch,
    ctloop_missing,
    fmt_s,
    print_load,
    print_machine,
    print_table,
)

PATHS = ("detector", "profile")
LEVELS = ("feature", "dataset")


@dataclass(frozen=True)
class Case:
    """One drift of the stream: what changes, where, and what should notice it."""

    name: str
    kind: str
    start: int  # absolute row
    end: int  # absolute row, exclusive
    spec: dict[str, Any]
    expect: str  # what a feature monitor should see (docs/churn-data.md)


def layout(offset: int, rows: int, windows: int) -> list[Case]:
    """The drifts, placed at fixed fractions of the stream (window units)."""

    def at(window: float) -> int:
        return offset + round(window * rows)

    scale = windows / 100  # the layout is written for 100 windows
    marks: list[tuple[str, str, float, float, dict[str, Any]]] = [
        ("numeric shift", "covariate", 30.5, 38, {"features": {"monthly_charges": {"shift": 15}}}),
        (
            "category mix",
            "covariate",
            41.25,
            49,
            {"features": {"contract": {"month-to-month": 0.8}}},
        ),
        (
            "gradual shift",
            "covariate",
            52,
            62,
            {"features": {"tenure_months": {"scale": 0.6}}, "ramp": 5 * rows},
        ),
        (
            "missing values",
            "covariate",
            65.5,
            72,
            {"features": {"data_usage_gb": {"missing": 0.3}}},
        ),
        ("prior shift", "prior", 75, 83, {"base_rate": 0.5}),
        ("concept drift", "concept", 86.3, 94, {"coef_changes": {"contract": -1.0}}),
    ]
    expect = {
        "numeric shift": "monthly_charges (+ total_charges)",
        "category mix": "contract (+ tenure, total_charges)",
        "gradual shift": "tenure_months (+ total_charges)",
        "missing values": "null share of data_usage_gb",
        "prior shift": "none (features unchanged)",
        "concept drift": "none (features unchanged)",
    }
    return [
        Case(name, kind, at(a * scale), at(b * scale), spec, expect[name])
        for name, kind, a, b, spec in marks
    ]


@dataclass
class Flags:
    """Per window of one seed: flagged or not, and the columns named, per path."""

    dataset: dict[str, list[bool]] = field(default_factory=lambda: {p: [] for p in PATHS})
    columns: dict[str, list[list[str]]] = field(default_factory=lambda: {p: [] for p in PATHS})
    seconds: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PATHS})
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PATHS, 0.0))
    churn_rate: list[float] = field(default_factory=list)
    missing_usage: list[float] = field(default_factory=list)

    def flagged(self, path: str, level: str, i: int) -> bool:
        return self.dataset[path][i] if level == "dataset" else bool(self.columns[path][i])


@dataclass
class SeedRun:
    seed: int
    flags: Flags
    fit_s: dict[str, float]
    reference_churn: float


def run_seed(seed: int, args: argparse.Namespace, cases: list[Case]) -> SeedRun:
    """Fit both paths on seed's reference and score every window of its stream."""
    from ctloop.datasets import churn
    from ctloop.monitoring.detectors import DatasetDriftDetector
    from ctloop.monitoring.profile_drift import drift
    from ctloop.monitoring.profiles import ReferenceProfile

    reference = churn.generate(args.reference, seed=seed)
    features = reference[churn.FEATURES]
    fit_s = {}
    with Stopwatch() as sw:
        detector = DatasetDriftDetector().fit(features)
    fit_s["detector"] = sw.wall
    with Stopwatch() as sw:
        profile = ReferenceProfile.from_frame(features)
    fit_s["profile"] = sw.wall

    specs = [churn.Drift(start=c.start, end=c.end, kind=c.kind, **c.spec) for c in cases]  # type: ignore[arg-type]
    flags = Flags()
    stream = churn.stream(
        args.windows, args.window_rows, seed=seed, offset=args.reference, drift=specs
    )
    for window in stream:
        current = window[churn.FEATURES]
        flags.churn_rate.append(float(window[churn.TARGET].mean()))
        flags.missing_usage.append(float(current["data_usage_gb"].isna().mean()))
        with Stopwatch() as sw:
            result = detector.score(current)
        flags.seconds["detector"].append(sw.wall)
        flags.cpu["detector"] += sw.cpu
        flags.dataset["detector"].append(result.drifted)
        flags.columns["detector"].append(result.drifted_columns)
        with Stopwatch() as sw:
            result = drift(profile, profile.window(current))
        flags.seconds["profile"].append(sw.wall)
        flags.cpu["profile"] += sw.cpu
        flags.dataset["profile"].append(result.drifted)
        flags.columns["profile"].append(result.drifted_columns)
    return SeedRun(seed, flags, fit_s, float(reference[churn.TARGET].mean()))


# --------------------------------------------------------------------------- analysis


def window_bounds(i: int, args: argparse.Namespace) -> tuple[int, int]:
    start = args.reference + i * args.window_rows
    return start, start + args.window_rows


def drift_windows(case: Case, args: argparse.Namespace) -> list[int]:
    """The windows holding at least one row of the drift."""
    return [
        i
        for i in range(args.windows)
        if window_bounds(i, args)[1] > case.start and window_bounds(i, args)[0] < case.end
    ]


def clean_windows(cases: list[Case], args: argparse.Namespace) -> list[int]:
    """The windows with no drifted row."""
    dirty = {i for c in cases for i in drift_windows(c, args)}
    return [i for i in range(args.windows) if i not in dirty]


def first_flag(run: SeedRun, case: Case, path: str, level: str, args: argparse.Namespace) -> int:
    """The first window overlapping the drift that is flagged, or -1."""
    for i in drift_windows(case, args):
        if run.flags.flagged(path, level, i):
            return i
    return -1


def fmt_rows(n: float) -> str:
    return f"{n:,.0f}"


def names(columns: list[str]) -> str:
    return ", ".join(columns) if columns else "-"


def report(runs: list[SeedRun], cases: list[Case], args: argparse.Namespace) -> None:
    first = runs[0]
    expected = []
    for case in cases:
        drifted = drift_windows(case, args)
        churn_rate = statistics.mean(first.flags.churn_rate[i] for i in drifted)
        expected.append(
            [
                case.name,
                case.kind,
                f"{fmt_rows(case.start)}-{fmt_rows(case.end)}",
                f"{len(drifted)}",
                f"{churn_rate:.0%}",
                case.expect,
            ]
        )
    print_table(
        f"the drifts (absolute rows, end exclusive; seed {first.seed}: churn rate of the "
        f"reference {first.reference_churn:.0%})",
        ["drift", "kind", "rows", "windows", "churn", "a feature monitor should see"],
        expected,
        note="windows = windows holding at least one drifted row; churn = the label rate over "
        "them (what a label-rate\nmonitor would see; the features cannot show it).",
    )

    rows = []
    for case in cases:
        drifted = drift_windows(case, args)
        for level in LEVELS:
            row: list[Any] = [case.name if level == "feature" else "", level]
            named: dict[str, list[str]] = {}
            for path in PATHS:
                i = first_flag(first, case, path, level, args)
                if i < 0:
                    row += ["not flagged", "-"]
                    named[path] = []
                else:
                    row += [str(i), fmt_rows(window_bounds(i, args)[1] - case.start)]
                    named[path] = first.flags.columns[path][i]
            hits = sum(first.flags.flagged("detector", level, i) for i in drifted)
            most = max(len(first.flags.columns["detector"][i]) for i in drifted)
            row += [f"{hits}/{len(drifted)}", f"{most}/12" if level == "feature" else ""]
            same = named["profile"] == named["detector"]
            row.append(
                names(named["detector"])
                + ("" if same else f" (profile: {names(named['profile'])})")
            )
            rows.append(row)
    print_table(
        f"per drift, seed {first.seed}: first flagged window and delay "
        f"({args.windows} windows x {args.window_rows:,} rows after a "
        f"{args.reference:,}-row reference)",
        [
            "drift",
            "level",
            "detector window",
            "delay rows",
            "profile window",
            "delay rows",
            "flagged",
            "max cols",
            "features named (first flagged window)",
        ],
        rows,
        note="window = index of the first window overlapping the drift that is flagged; "
        "delay = that window's end - drift start;\nfeature = any column flagged, dataset = "
        "at least half of the 12 columns flagged (drift_share=0.5);\nflagged = windows of "
        "the drift the detector flagged; max cols = most columns it flagged in one of them.",
    )

    if len(runs) > 1:
        rows = []
        for case in cases:
            for level in LEVELS:
                row = [case.name if level == "feature" else "", level]
                seen: Counter[str] = Counter()
                for path in PATHS:
                    delays = []
                    for run in runs:
                        i = first_flag(run, case, path, level, args)
                        if i >= 0:
                            delays.append(window_bounds(i, args)[1] - case.start)
                            if path == "detector":
                                seen.update(run.flags.columns[path][i])
                    row.append(f"{len(delays)}/{len(runs)}")
                    row.append(fmt_rows(statistics.median(delays)) if delays else "-")
                    row.append(fmt_rows(max(delays)) if delays else "-")
                top = seen.most_common(3)
                row.append(", ".join(f"{c} x{n}" for c, n in top) if level == "feature" else "")
                rows.append(row)
        print_table(
            f"per drift over {len(runs)} seeds ({', '.join(str(r.seed) for r in runs)})",
            [
                "drift",
                "level",
                "detector found",
                "median delay",
                "max delay",
                "profile found",
                "median delay",
                "max delay",
                "named (detector, first flag; top 3)",
            ],
            rows,
            note="found = seeds in which some window overlapping the drift was flagged; "
            "delays in rows. Where the features\ndo not change (prior, concept; missing values "
            "are left out of the test) a flag is a chance one: compare\nthe false-alarm rate "
            "below and the columns named.",
        )

    clean = clean_windows(cases, args)
    total = len(clean) * len(runs)
    rows = []
    for path in PATHS:
        for level in LEVELS:
            flagged = sum(run.flags.flagged(path, level, i) for run in runs for i in clean)
            culprits: Counter[str] = Counter(
                c
                for run in runs
                for i in clean
                if run.flags.flagged(path, level, i)
                for c in run.flags.columns[path][i]
            )
            rows.append(
                [
                    path,
                    level,
                    f"{total:,}",
                    str(flagged),
                    f"{100 * flagged / total:.1f}" if total else "n/a",
                    ", ".join(f"{c} x{n}" for c, n in culprits.most_common()) or "-",
                ]
            )
    print_table(
        "false alarms on undrifted windows",
        ["path", "level", "clean windows", "flagged", "per 100 windows", "columns flagged"],
        rows,
        note=f"clean windows = the {len(clean)} windows per seed with no drifted row (before "
        "the first drift, between drifts, after the last),\nover every seed. The windows "
        "of the prior and concept drifts have undrifted features too but are not counted.",
    )

    rows = []
    for path in PATHS:
        seconds = sorted(s for run in runs for s in run.flags.seconds[path])
        cpu = sum(run.flags.cpu[path] for run in runs) / len(seconds)
        fit = statistics.median(run.fit_s[path] for run in runs)
        what = "score(window)" if path == "detector" else "window(df) + drift(ref, window)"
        rows.append(
            [
                path,
                what,
                f"{statistics.median(seconds) * 1000:.1f}",
                f"{seconds[int(0.95 * (len(seconds) - 1))] * 1000:.1f}",
                f"{cpu * 1000:.1f}",
                f"{args.window_rows / statistics.median(seconds):,.0f}",
                f"{fit * 1000:.1f}",
            ]
        )
    print_table(
        f"time per window ({args.window_rows:,} rows x 12 columns; "
        f"{sum(len(r.flags.seconds['detector']) for r in runs)} windows per path)",
        ["path", "timed", "median ms", "p95 ms", "cpu ms", "rows/s", "fit ms"],
        rows,
        note=f"fit = DatasetDriftDetector().fit / ReferenceProfile.from_frame on the "
        f"{args.reference:,}-row reference (median over seeds);\ncpu ms = mean CPU time per "
        "window (above the wall time where numpy uses a second thread). Generating the data "
        "is not timed.",
    )

    missing = [first.flags.missing_usage[i] for i in drift_windows(cases[3], args)]
    clean_missing = [first.flags.missing_usage[i] for i in clean]
    print(
        f"\nmissing share of data_usage_gb, seed {first.seed}: "
        f"{statistics.mean(clean_missing):.1%} in clean windows, "
        f"{statistics.mean(missing):.1%} in the missing-values drift's windows "
        "(reported as missing_share_current on every result; not part of the test)"
    )


# --------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 seed")
    p.add_argument("--seeds", type=int, help="tables to run, seeds 0..N-1 (default 20; --quick 1)")
    p.add_argument("--reference", type=int, default=10_000, help="reference rows (10,000)")
    p.add_argument("--windows", type=int, default=100, help="windows in the stream (100)")
    p.add_argument("--window-rows", type=int, default=1_000, help="rows per window (1,000)")
    args = p.parse_args(argv)
    args.seeds = args.seeds or (1 if args.quick else 20)
    if min(args.seeds, args.reference, args.windows, args.window_rows) < 1:
        p.error("--seeds, --reference, --windows and --window-rows must be at least 1")
    if args.windows < 20:
        p.error("--windows must be at least 20 (the six drifts need room)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = layout(args.reference, args.window_rows, args.windows)
    print(
        f"ctloop benchmark: drift detection — churn stream of {args.windows} windows x "
        f"{args.window_rows:,} rows after a {args.reference:,}-row reference, six drifts at "
        f"known rows, {args.seeds} seed(s)"
    )
    print_machine(["ctloop", "numpy", "pandas", "scipy"])
    print(
        "  detectors  : DatasetDriftDetector() and ReferenceProfile.from_frame + drift(), "
        "default configuration\n"
        "               (auto methods: wasserstein >= 0.1 numeric, jensenshannon >= 0.1 "
        "categorical; drift_share 0.5)"
    )
    print_load("before")
    other = OtherLoad()
    print()

    runs = []
    try:
        for seed in range(args.seeds):
            with Stopwatch() as sw:
                runs.append(run_seed(seed, args, cases))
            print(
                f"  seed {seed}: {args.windows} windows scored by both paths in {fmt_s(sw.wall)} s"
            )
            sys.stdout.flush()
    except (ImportError, AttributeError) as exc:
        print(ctloop_missing(exc))
        return 0

    report(runs, cases, args)
    print()
    print_load("after")
    print(f"\nother load : {other.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
