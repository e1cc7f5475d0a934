"""Benchmark: drift detection on a wide table — ctloop against Evidently 0.7 (issue 6).

Run from the repository root with the benchmark environments (``make bench`` builds both)::

    .venv-bench/bin/python bench/drift.py              # 1M x 50 vs 1M x 50, ~15 min
    .venv-bench/bin/python bench/drift.py --quick      # 20k rows, fewer seeds, ~2 min
    .venv-bench/bin/python bench/drift.py --rows 200000 --json /tmp/drift.json

**Data.** A reference and a current table of ``--rows`` rows x 50 features, 40 numeric
(``num_00``..``num_39``: normal, log-normal, gamma and two-normal mixtures, parameters
fixed per column) and 10 categorical (``cat_0``..``cat_9``: 2 to 20 string categories
with fixed frequencies), drawn with ``numpy.random.default_rng`` from fixed seeds and
written once to Parquet under ``bench/.work/drift/`` (pyarrow's defaults: one row group
per 1M rows). Both tools read the same files, so reading is inside both timings (and
measured alone too); the files are read once untimed first, so every variant starts from
a warm page cache. The current table drifts in 13
features: ``num_00``..``num_07`` shift their mean by 0.2 standard deviations,
``num_08``..``num_10`` widen by 1.25x around their mean, and ``cat_2`` and ``cat_7``
tilt their category frequencies (``p * exp(0.8 * t)``, ``t`` from -1 to 1 over the
categories, renormalised).

**Variants**, each in a fresh child process so that its peak RSS (``ru_maxrss`` from
``os.wait4``) is its own; all in their default configuration:

* ``read``: ``pandas.read_parquet`` of both files (pandas 3, ctloop's environment);
* ``ctloop``: read both, ``DatasetDriftDetector().fit(reference).score(current)``;
* ``ctloop report``: read both, ``build_report(reference, current)`` (the drift table
  plus both histograms of every column, as Evidently's report also computes);
* ``profile build``: read the reference, ``ReferenceProfile.from_frame``, save it as
  JSON: done once per reference, ahead of the windows;
* ``ctloop profile``: load that JSON profile, read the current file, count it
  (``profile.window``) and ``drift(profile, window)``: the path of a monitor with a
  precomputed reference profile (the reference's rows are never read);
* ``ctloop profile batches``: the same, with ``profile.window_from_parquet``: the
  profiled columns of the current file read and counted 32,768 rows at a time, so the
  whole current table is never a DataFrame;
* ``evidently read``: ``pandas.read_parquet`` of both files (pandas 2, Evidently's env);
* ``evidently``: read both, ``Report([DataDriftPreset()]).run(current, reference)`` with
  an explicit ``DataDefinition`` of the same 40 numeric and 10 categorical columns, and
  every column's ``ValueDrift`` read back from the snapshot
  (``.venv-bench-evidently/bin/python bench/_drift_evidently.py``).

Time is the wall time from the first read to the last result (imports and interpreter
start-up are reported apart); CPU is that of the same region. When Evidently does not
finish within ``--timeout`` seconds (or fails) at ``--rows``, it is retried at smaller
sizes and the comparison is made at the largest size where it finished, said in the
output.

**False positives.** Pairs of tables from the same generator with different seeds (no
drift) at 1,000 rows (``--fpr-seeds`` pairs), 100,000 rows and ``--rows`` rows; both
tools at their defaults. The rate is flagged features / (features x pairs), and the
dataset verdict (drift share >= 0.5) per pair.

**Agreement.** Every score ctloop computed is recomputed directly with scipy / numpy on
the same data and bins: ``scipy.stats.ks_2samp``, ``wasserstein_distance / np.std``,
``scipy.spatial.distance.jensenshannon(base=2)`` and a numpy PSI on counts over the
detector's quantile edges (with ``np.histogram`` over ``[-inf, *edges, inf]``), and
``scipy.stats.chi2_contingency(correction=False)`` on the category counts (whose p-value
is also the two-sided z-test's on two categories). Reported: the largest absolute
difference per method; and, apart, how far the profile path's sample-based Wasserstein
and the Evidently scores lie from them.

Targets (issue 6): ctloop >= 10x faster than Evidently and >= 5x less peak memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (bench/ is not a package; see the sys.path line)
    OtherLoad,
    fmt_ratio,
    fmt_s,
    print_load,
    print_machine,
    verdict,
)

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work" / "drift"
EVIDENTLY_PYTHON = ROOT / ".venv-bench-evidently" / "bin" / "python"
EVIDENTLY_HELPER = Path(__file__).resolve().parent / "_drift_evidently.py"

N_NUMERIC = 40
CATEGORY_COUNTS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20)
NUMERIC = [f"num_{i:02d}" for i in range(N_NUMERIC)]
CATEGORICAL = [f"cat_{i}" for i in range(len(CATEGORY_COUNTS))]
SHIFTED = NUMERIC[:8]  # mean + 0.2 sd
WIDENED = NUMERIC[8:11]  # spread x 1.25 around the mean
TILTED = ["cat_2", "cat_7"]  # category frequencies tilted
DRIFTED = [*SHIFTED, *WIDENED, *TILTED]
DATA_VERSION = 1  # bump when the generator changes: the Parquet cache is keyed by it

TARGET_SPEED = 10.0  # ctloop >= 10x faster than Evidently
TARGET_MEMORY = 5.0  # ctloop >= 5x less peak memory
# Evidently as the issue measured it on this machine type: 200k x 50 vs 200k x 50
ISSUE_EVIDENTLY = "26 s and 1.2 GB peak RSS at 200k x 50 vs 200k x 50"

CTLOOP_VARIANTS = (
    "read",
    "ctloop",
    "ctloop report",
    "profile build",
    "ctloop profile",
    "ctloop profile batches",
)
BATCH_ROWS = 32_768  # rows per batch of the batched profile path (window_from_parquet)
EVIDENTLY_VARIANTS = ("evidently read", "evidently")


# --------------------------------------------------------------------------- data


def generate(rows: int, seed: int, drifted: bool) -> Any:
    """The table as a pyarrow Table: column parameters fixed, values from ``seed``."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([DATA_VERSION, seed])
    arrays: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        par = np.random.default_rng([DATA_VERSION, 1000 + i])  # the column's distribution
        family = i % 4
        if family == 0:
            x = rng.normal(par.uniform(-50, 50), par.uniform(0.5, 20), rows)
        elif family == 1:
            x = rng.lognormal(par.uniform(0, 2), par.uniform(0.3, 1.0), rows)
        elif family == 2:
            x = rng.gamma(par.uniform(1, 5), par.uniform(1, 10), rows)
        else:
            low, high = par.uniform(-10, 0), par.uniform(2, 12)
            pick = rng.random(rows) < par.uniform(0.2, 0.8)
            x = np.where(pick, rng.normal(low, 1.0, rows), rng.normal(high, 2.0, rows))
        if drifted and name in SHIFTED:
            x = x + 0.2 * x.std()
        elif drifted and name in WIDENED:
            x = x.mean() + 1.25 * (x - x.mean())
        arrays[name] = x
    for c, (name, k) in enumerate(zip(CATEGORICAL, CATEGORY_COUNTS, strict=True)):
        p = np.random.default_rng([DATA_VERSION, 2000 + c]).dirichlet(np.full(k, 2.0))
        if drifted and name in TILTED:
            p = p * np.exp(0.8 * np.linspace(-1, 1, k))
            p = p / p.sum()
        codes = rng.choice(k, size=rows, p=p).astype(np.int32)
        labels = pa.array([f"{name}_v{v:02d}" for v in range(k)], type=pa.string())
        arrays[name] = pa.DictionaryArray.from_arrays(pa.array(codes), labels).cast(pa.string())
    return pa.table(arrays)


def data_file(rows: int, seed: int, drifted: bool) -> Path:
    """The Parquet file of one table, written on first use (and reused after)."""
    import pyarrow.parquet as pq

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"v{DATA_VERSION}_rows{rows}_seed{seed}{'_drifted' if drifted else ''}.parquet"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        pq.write_table(generate(rows, seed, drifted), tmp)
        tmp.rename(path)
    return path


def warm(paths: tuple[Path, ...]) -> None:
    """Read the files' bytes once, untimed, so that every variant starts from a warm page
    cache (the first reader of a file would otherwise pay the disk for all)."""
    for path in paths:
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


# --------------------------------------------------------------------------- child side


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss_kib() -> int:
    """This process's peak resident set so far (VmHWM), KiB."""
    return _status_kib("VmHWM")


def _rss_kib() -> int:
    """This process's resident set now (VmRSS), KiB."""
    return _status_kib("VmRSS")


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _columns(result: Any) -> dict[str, dict[str, Any]]:
    return {
        r.column: {
            "method": r.method,
            "score": r.score,
            "p_value": r.p_value,
            "threshold": r.threshold,
            "drifted": r.drifted,
            "note": r.note,
        }
        for r in result.columns
    }


def child(args: argparse.Namespace) -> int:
    """Run one ctloop variant in this process and write what it measured to ``--out``."""
    t0 = time.perf_counter()
    import pandas as pd

    from ctloop.monitoring.detectors import DatasetDriftDetector
    from ctloop.monitoring.profile_drift import drift
    from ctloop.monitoring.profiles import ReferenceProfile
    from ctloop.monitoring.report import build_report

    import_s = time.perf_counter() - t0
    import_rss = _rss_kib()
    pairs = json.loads(Path(args.pairs).read_text())
    results = []
    for reference_path, current_path in pairs:
        out: dict[str, Any] = {}
        cpu0, t0 = _cpu(), time.perf_counter()
        if args.variant == "read":
            reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
            out["read_s"] = time.perf_counter() - t0
        elif args.variant in ("ctloop", "ctloop report"):
            reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
            t1 = time.perf_counter()
            out["read_s"] = t1 - t0
            if args.variant == "ctloop":
                result = DatasetDriftDetector().fit(reference).score(current)
                out["columns"] = _columns(result)
                out["dataset_drifted"] = result.drifted
            else:
                report = build_report(reference, current)
                out["columns"] = {
                    c["column"]: {k: c[k] for k in ("method", "score", "p_value", "drifted")}
                    for c in report.dataset_drift["columns"]
                }
                out["dataset_drifted"] = report.dataset_drift["drifted"]
                out["histograms"] = len(report.histograms)
        elif args.variant == "profile build":
            reference = pd.read_parquet(reference_path)
            t1 = time.perf_counter()
            out["read_s"] = t1 - t0
            profile = ReferenceProfile.from_frame(reference)
            t2 = time.perf_counter()
            Path(args.profile).write_text(json.dumps(profile.to_dict()))
            out["profile_s"] = t2 - t1
            out["save_s"] = time.perf_counter() - t2
            out["profile_bytes"] = Path(args.profile).stat().st_size
        elif args.variant == "ctloop profile":
            profile = ReferenceProfile.from_dict(json.loads(Path(args.profile).read_text()))
            t1 = time.perf_counter()
            out["load_s"] = t1 - t0
            current = pd.read_parquet(current_path)
            t2 = time.perf_counter()
            out["read_s"] = t2 - t1
            result = drift(profile, profile.window(current))
            out["columns"] = _columns(result)
            out["dataset_drifted"] = result.drifted
        elif args.variant == "ctloop profile batches":
            profile = ReferenceProfile.from_dict(json.loads(Path(args.profile).read_text()))
            out["load_s"] = time.perf_counter() - t0
            window = profile.window_from_parquet(current_path, batch_rows=BATCH_ROWS)
            result = drift(profile, window)
            out["read_s"] = 0.0  # read and counted in one pass: all of it is compute_s
            out["columns"] = _columns(result)
            out["dataset_drifted"] = result.drifted
        else:
            raise SystemExit(f"unknown variant {args.variant!r}")
        out["total_s"] = time.perf_counter() - t0
        out["compute_s"] = out["total_s"] - out["read_s"]
        out["cpu_s"] = _cpu() - cpu0
        results.append(out)
    Path(args.out).write_text(
        json.dumps(
            {
                "import_s": import_s,
                "import_rss_kib": import_rss,
                "results": results,
                "vmhwm_kib": _peak_rss_kib(),
            },
            default=float,
        )
    )
    return 0


# --------------------------------------------------------------------------- parent side


class ChildFailed(Exception):
    pass


def run_child(cmd: list[str], out: Path, timeout: float) -> dict[str, Any]:
    """Run ``cmd`` to completion; its JSON output plus the peak RSS and CPU the kernel
    accounted to it (``os.wait4``: this child alone, not every child so far)."""
    out.unlink(missing_ok=True)
    log = out.with_suffix(".log")
    start = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    status, usage = 0, None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > timeout:
            os.kill(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise ChildFailed(f"timed out after {timeout:.0f} s")
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise ChildFailed(f"exit {proc.returncode}: {' / '.join(tail) or 'no output'}")
    data = json.loads(out.read_text())
    data["maxrss_kib"] = usage.ru_maxrss
    data["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    data["process_wall_s"] = wall
    return data


def pairs_file(pairs: list[tuple[Path, Path]], name: str) -> Path:
    path = WORK / f"{name}.pairs.json"
    path.write_text(json.dumps([[str(r), str(c)] for r, c in pairs]))
    return path


def run_ctloop(
    variant: str, pairs: list[tuple[Path, Path]], tag: str, timeout: float, profile: Path
) -> dict[str, Any]:
    slug = variant.replace(" ", "-")
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--variant",
        variant,
        "--pairs",
        str(pairs_file(pairs, f"{tag}-{slug}")),
        "--out",
        str(WORK / f"{tag}-{slug}.json"),
        "--profile",
        str(profile),
    ]
    return run_child(cmd, WORK / f"{tag}-{slug}.json", timeout)


def run_evidently(
    pairs: list[tuple[Path, Path]], tag: str, timeout: float, read_only: bool = False
) -> dict[str, Any]:
    slug = "evidently-read" if read_only else "evidently"
    cmd = [
        str(EVIDENTLY_PYTHON),
        str(EVIDENTLY_HELPER),
        "--pairs",
        str(pairs_file(pairs, f"{tag}-{slug}")),
        "--numeric",
        ",".join(NUMERIC),
        "--categorical",
        ",".join(CATEGORICAL),
        "--out",
        str(WORK / f"{tag}-{slug}.json"),
    ] + (["--read-only"] if read_only else [])
    return run_child(cmd, WORK / f"{tag}-{slug}.json", timeout)


def evidently_version() -> str:
    if not EVIDENTLY_PYTHON.exists():
        return "not installed (make .venv-bench-evidently/.peer-installed)"
    out = subprocess.run(
        [
            str(EVIDENTLY_PYTHON),
            "-c",
            "import importlib.metadata as m; print(', '.join(p + ' ' + m.version(p) "
            "for p in ('evidently', 'pandas', 'numpy', 'scipy')))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or f"not importable: {out.stderr.strip().splitlines()[-1:]}"


# --------------------------------------------------------------------------- agreement


def agreement(reference_path: Path, current_path: Path, small: tuple[Path, Path]) -> dict:
    """ctloop's scores against direct scipy/numpy computations on the same data and bins.

    Runs in this process (not timed). Returns {method: {"max_abs": …, "columns": n,
    "what": …}}.
    """
    import numpy as np
    import pandas as pd
    from scipy import stats as sps
    from scipy.spatial.distance import jensenshannon

    from ctloop.monitoring.detectors import DatasetDriftDetector

    rows: dict[str, dict[str, Any]] = {}

    def note(key: str, diff: float, what: str) -> None:
        entry = rows.setdefault(key, {"max_abs": 0.0, "columns": 0, "what": what})
        entry["max_abs"] = max(entry["max_abs"], abs(diff)) if math.isfinite(diff) else math.inf
        entry["columns"] += 1

    def counts_of(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        keys = sorted(set(ref.dropna()) | set(cur.dropna()))
        r, c = ref.value_counts(), cur.value_counts()
        return (
            np.array([r.get(k, 0) for k in keys], dtype=float),
            np.array([c.get(k, 0) for k in keys], dtype=float),
        )

    def binned(det: Any, ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the detector's edges, checked against numpy's quantiles, then counted by numpy
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, det.bins + 1)))
        edges[-1] = np.nextafter(edges[-1], np.inf)
        note(
            "quantile edges", float(np.max(np.abs(edges - det.edges_))), "bin edges vs np.quantile"
        )
        full = np.concatenate([[-np.inf], det.edges_, [np.inf]])
        return np.histogram(ref, full)[0].astype(float), np.histogram(cur, full)[0].astype(float)

    def direct_psi(r: np.ndarray, c: np.ndarray) -> float:
        p, q = np.maximum(r / r.sum(), 1e-4), np.maximum(c / c.sum(), 1e-4)
        return float(np.sum((q - p) * np.log(q / p)))

    configs: list[tuple[tuple[Path, Path], Any]] = [
        ((reference_path, current_path), None),  # auto: wasserstein, jensenshannon
        ((reference_path, current_path), {"numeric": "ks", "categorical": "chisquare"}),
        ((reference_path, current_path), "psi"),
        ((reference_path, current_path), {"numeric": "jensenshannon"}),
        (small, None),  # auto at 1,000 rows: ks, chisquare, ztest
    ]
    frames: dict[Path, pd.DataFrame] = {}
    for (rp, cp), methods in configs:
        ref_df = frames.setdefault(rp, pd.read_parquet(rp))
        cur_df = frames.setdefault(cp, pd.read_parquet(cp))
        detector = DatasetDriftDetector(methods=methods).fit(ref_df)
        result = detector.score(cur_df)
        for r in result.columns:
            det = detector.detectors_[r.column]
            ref, cur = ref_df[r.column], cur_df[r.column]
            m = r.method
            if r.kind == "numeric":
                x, y = ref.to_numpy(float), cur.to_numpy(float)
                if m == "ks":
                    direct = sps.ks_2samp(x, y)
                    note("ks statistic", r.score - direct.statistic, "scipy.stats.ks_2samp")
                    note("ks p-value", r.p_value - direct.pvalue, "scipy.stats.ks_2samp")
                elif m == "wasserstein":
                    direct = sps.wasserstein_distance(x, y) / np.std(x)
                    note("wasserstein / std", r.score - direct, "wasserstein_distance / np.std")
                else:
                    cr, cc = binned(det, x, y)
                    if m == "psi":
                        note(
                            "psi (numeric)", r.score - direct_psi(cr, cc), "numpy on the same bins"
                        )
                    else:
                        d = jensenshannon(cr, cc, base=2)
                        note("jensenshannon (numeric)", r.score - d, "scipy jensenshannon base 2")
            else:
                cr, cc = counts_of(ref, cur)
                if m in ("chisquare", "ztest"):
                    chi2 = sps.chi2_contingency(np.vstack([cr, cc]), correction=False)
                    if m == "chisquare":
                        note("chi2 statistic", r.score - chi2.statistic, "chi2_contingency")
                    else:
                        note("ztest abs(z)", r.score - math.sqrt(chi2.statistic), "sqrt(chi2)")
                    note(f"{m} p-value", r.p_value - chi2.pvalue, "chi2_contingency")
                elif m == "psi":
                    note("psi (categorical)", r.score - direct_psi(cr, cc), "numpy on the counts")
                else:
                    d = jensenshannon(cr, cc, base=2)
                    note("jensenshannon (categorical)", r.score - d, "scipy jensenshannon base 2")
    return rows


def exact_scores(reference_path: Path, current_path: Path) -> dict[str, dict[str, float]]:
    """Direct per-column scores by the automatic methods' definitions (W1/std; JS on the
    category counts in base 2 and base e), to compare the profile path and Evidently."""
    import numpy as np
    import pandas as pd
    from scipy import stats as sps
    from scipy.spatial.distance import jensenshannon

    ref_df, cur_df = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    out: dict[str, dict[str, float]] = {}
    for name in NUMERIC:
        x, y = ref_df[name].to_numpy(float), cur_df[name].to_numpy(float)
        out[name] = {"w": float(sps.wasserstein_distance(x, y) / np.std(x))}
    for name in CATEGORICAL:
        keys = sorted(set(ref_df[name]) | set(cur_df[name]))
        r, c = ref_df[name].value_counts(), cur_df[name].value_counts()
        p = np.array([r.get(k, 0) for k in keys], float)
        q = np.array([c.get(k, 0) for k in keys], float)
        out[name] = {"js2": float(jensenshannon(p, q, base=2)), "jse": float(jensenshannon(p, q))}
    return out


# --------------------------------------------------------------------------- report


def md_table(title: str, headers: list[str], rows: list[list[Any]], note: str = "") -> str:
    """A Markdown table, its columns padded so that the raw text reads as a table too."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def numeric(text: str) -> bool:
        try:
            float(text.rstrip("x%").replace(",", ""))
        except ValueError:
            return text in ("n/a", "-")
        return True

    def line(row: list[str], header: bool = False) -> str:
        parts = [
            c.rjust(widths[i]) if not header and numeric(c) else c.ljust(widths[i])
            for i, c in enumerate(row)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if cells and numeric(cells[0][i]) else "-" * (w + 2)
            for i, w in enumerate(widths)
        )
        + "|"
    )
    text = [f"\n**{title}**\n", line(headers, header=True), rule, *(line(r) for r in cells)]
    if note:
        text += ["", note.strip()]
    return "\n".join(text)


def show(text: str) -> None:
    print(text)
    sys.stdout.flush()


def mib(kib: float) -> str:
    return f"{kib / 1024:,.0f}"


def flagged(result: dict[str, Any]) -> list[str]:
    return sorted(c for c, v in result.get("columns", {}).items() if v["drifted"])


def fmt_names(names: list[str]) -> str:
    return ", ".join(names) if names else "-"


def total_of(run: dict[str, Any]) -> float:
    """A variant's time from its first read to its last result."""
    r = run["results"][0]
    return float(r.get("total_s", r["read_s"] + r["compute_s"]))


def main_run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"rows": args.rows, "quick": args.quick}
    profile_path = WORK / "reference-profile.json"

    # ---- timing and memory at --rows (Evidently retried smaller if it cannot finish)
    ladder = [args.rows] + [n for n in (500_000, 200_000, 100_000, 50_000, 20_000) if n < args.rows]
    timing: dict[int, dict[str, Any]] = {}
    evidently_failures: dict[int, str] = {}
    compared_rows = None
    for rows in ladder:
        show(f"\n  {rows:,} rows: writing/reading the Parquet files …")
        pair = (data_file(rows, 0, False), data_file(rows, 1, True))
        warm(pair)
        runs: dict[str, Any] = {}
        for variant in CTLOOP_VARIANTS:
            try:
                runs[variant] = run_ctloop(
                    variant, [pair], f"main{rows}", args.timeout, profile_path
                )
                show(f"  {rows:,} rows: {variant:<15} {fmt_s(total_of(runs[variant]))} s")
            except ChildFailed as exc:
                runs[variant] = {"error": str(exc)}
                show(f"  {rows:,} rows: {variant:<15} FAILED: {exc}")
        for variant in EVIDENTLY_VARIANTS:
            if not EVIDENTLY_PYTHON.exists():
                runs[variant] = {"error": "no .venv-bench-evidently"}
                continue
            try:
                runs[variant] = run_evidently(
                    [pair], f"main{rows}", args.timeout, read_only=variant == "evidently read"
                )
                show(f"  {rows:,} rows: {variant:<15} {fmt_s(total_of(runs[variant]))} s")
            except ChildFailed as exc:
                runs[variant] = {"error": str(exc)}
                show(f"  {rows:,} rows: {variant:<15} FAILED: {exc}")
        timing[rows] = runs
        if "error" not in runs.get("evidently", {"error": ""}):
            compared_rows = rows
            break
        evidently_failures[rows] = runs.get("evidently", {}).get("error", "not run")
        if not EVIDENTLY_PYTHON.exists():
            break
    figures["timing"] = timing
    figures["evidently_failures"] = evidently_failures
    figures["compared_rows"] = compared_rows

    # ---- false positives on identical distributions
    fpr_sizes = [(1000, args.fpr_seeds), (min(100_000, args.rows), args.fpr_seeds_100k)]
    if args.rows > 100_000:
        fpr_sizes.append((args.rows, 1))
    fpr: dict[int, dict[str, Any]] = {}
    for rows, seeds in fpr_sizes:
        pairs = [
            (data_file(rows, 100 + s, False), data_file(rows, 200 + s, False)) for s in range(seeds)
        ]
        entry: dict[str, Any] = {"pairs": seeds}
        for tool in ("ctloop", "ctloop profile", "evidently"):
            if tool == "evidently" and (compared_rows is None or rows > compared_rows):
                entry[tool] = {"error": "not run: Evidently did not finish at this size above"}
                continue
            try:
                if tool == "evidently":
                    data = run_evidently(pairs, f"fpr{rows}", args.timeout)
                else:
                    if tool == "ctloop profile":
                        # one reference profile per pair: build then score
                        results = []
                        for i, pr in enumerate(pairs):
                            prof = WORK / f"fpr{rows}-{i}-profile.json"
                            run_ctloop("profile build", [pr], f"fpr{rows}-{i}", args.timeout, prof)
                            results += run_ctloop(
                                "ctloop profile", [pr], f"fpr{rows}-{i}", args.timeout, prof
                            )["results"]
                        data = {"results": results}
                    else:
                        data = run_ctloop(tool, pairs, f"fpr{rows}", args.timeout, profile_path)
                res = data["results"]
                entry[tool] = {
                    "flagged": sum(len(flagged(r)) for r in res),
                    "numeric": sum(c in NUMERIC for r in res for c in flagged(r)),
                    "categorical": sum(c in CATEGORICAL for r in res for c in flagged(r)),
                    "tests": sum(len(r["columns"]) for r in res),
                    "dataset": sum(bool(r["dataset_drifted"]) for r in res),
                    "methods": sorted({v["method"] for r in res for v in r["columns"].values()}),
                    "columns": sorted({c for r in res for c in flagged(r)}),
                }
            except (ChildFailed, KeyError) as exc:
                entry[tool] = {"error": str(exc)}
        fpr[rows] = entry
        show(f"  false positives at {rows:,} rows ({seeds} pair(s)) done")
    figures["fpr"] = fpr

    # ---- agreement with scipy/numpy (and of the profile path / Evidently with exact)
    main_rows = compared_rows or args.rows
    pair = (data_file(main_rows, 0, False), data_file(main_rows, 1, True))
    small = (data_file(1000, 100, False), data_file(1000, 200, False))
    figures["agreement"] = agreement(pair[0], pair[1], small)
    exact = exact_scores(*pair)
    against: dict[str, dict[str, float]] = {}
    runs = timing[main_rows]

    def compare(tool: str, key: str, columns: list[str], scale: float = 1.0) -> None:
        cols = runs.get(tool, {}).get("results", [{}])[0].get("columns", {})
        diffs = [abs(cols[c]["score"] - scale * exact[c][key]) for c in columns if c in cols]
        if diffs:
            against[f"{tool}: {key}"] = {"max_abs": max(diffs), "columns": len(diffs)}

    compare("ctloop profile", "w", NUMERIC)
    compare("ctloop profile", "js2", CATEGORICAL)
    compare("evidently", "w", NUMERIC)
    compare("evidently", "jse", CATEGORICAL)
    compare("evidently", "js2", CATEGORICAL)
    figures["against_exact"] = against
    return figures


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    rows = figures["compared_rows"] or args.rows
    runs = figures["timing"][rows]
    for failed_rows, why in figures["evidently_failures"].items():
        show(f"\nEvidently did not finish at {failed_rows:,} rows: {why}")
    if figures["compared_rows"] is None:
        show("\nEvidently did not finish at any size tried: no comparison (ctloop rows only).")
    elif figures["compared_rows"] != args.rows:
        show(f"\nThe comparison below is at {rows:,} rows, the largest size Evidently finished.")

    table = []
    for variant in (*CTLOOP_VARIANTS, *EVIDENTLY_VARIANTS):
        run = runs.get(variant)
        if run is None:
            continue
        if "error" in run:
            table.append([variant, "FAILED", "-", "-", "-", "-", "-", "-", run["error"][:70]])
            continue
        r = run["results"][0]
        total = total_of(run)
        extra = ""
        if variant == "profile build":
            extra = (
                f"profile {r['profile_bytes'] / 1024:,.0f} KiB JSON, save {fmt_s(r['save_s'])} s"
            )
        elif variant == "ctloop profile":
            extra = f"load profile {fmt_s(r['load_s'])} s"
        elif variant == "ctloop profile batches":
            extra = f"load profile {fmt_s(r['load_s'])} s; {BATCH_ROWS:,}-row batches"
        elif variant == "ctloop report":
            extra = f"{r.get('histograms', 0)} histograms"
        if "columns" in r:
            extra = (
                extra + "; " if extra else ""
            ) + f"{len(flagged(r))} of {len(r['columns'])} flagged"
        table.append(
            [
                variant,
                fmt_s(total),
                fmt_s(r["read_s"]),
                fmt_s(r["compute_s"]) if "read" not in variant else "-",
                fmt_s(r["cpu_s"]),
                fmt_s(run["import_s"]),
                mib(run["import_rss_kib"]),
                mib(run["maxrss_kib"]),
                extra,
            ]
        )
    show(
        md_table(
            f"time and peak memory, reference {rows:,} x 50 vs current {rows:,} x 50 "
            "(one child process per variant)",
            [
                "variant",
                "total s",
                "read s",
                "compute s",
                "cpu s",
                "import s",
                "RSS after imports MiB",
                "peak RSS MiB",
                "notes",
            ],
            table,
            note="total = first read to last result; read = pandas.read_parquet of the files "
            "the variant reads (both, except\nprofile build: the reference, ctloop profile: the "
            "current one); compute = total - read; cpu = CPU time of\nthe same region; import = "
            "imports before it (not in total); peak RSS = ru_maxrss of the child process\n"
            "(interpreter, imports and data included). ctloop profile starts from the JSON "
            "profile that profile build wrote.",
        )
    )

    # targets
    ev = runs.get("evidently", {})
    target_rows = []
    if "error" not in ev and "results" in ev:
        er = ev["results"][0]
        ev_total = er["read_s"] + er["compute_s"]
        for variant in ("ctloop", "ctloop report", "ctloop profile", "ctloop profile batches"):
            run = runs.get(variant, {})
            if "results" not in run:
                continue
            r = run["results"][0]
            speed = ev_total / r["total_s"]
            memory = ev["maxrss_kib"] / run["maxrss_kib"]
            compute = er["compute_s"] / r["compute_s"] if r["compute_s"] else math.nan
            target_rows.append(
                [
                    variant,
                    fmt_ratio(speed),
                    verdict(speed >= TARGET_SPEED),
                    fmt_ratio(compute),
                    fmt_ratio(memory),
                    verdict(memory >= TARGET_MEMORY),
                ]
            )
    figures["targets"] = target_rows
    show(
        md_table(
            f"targets (issue 6): >= {TARGET_SPEED:.0f}x faster and >= {TARGET_MEMORY:.0f}x less "
            f"peak memory than Evidently, at {rows:,} rows",
            [
                "ctloop variant",
                "speed-up (total)",
                "met",
                "speed-up (compute only)",
                "memory ratio",
                "met",
            ],
            target_rows or [["-", "n/a", "n/a", "n/a", "n/a", "n/a"]],
            note="speed-up = Evidently's total / ctloop's total (both reading the same Parquet "
            "files); compute only leaves\nthe reads out; memory ratio = Evidently's peak RSS / "
            f"ctloop's. The issue measured Evidently at {ISSUE_EVIDENTLY}.",
        )
    )

    # findings
    found = []
    names = {}
    for variant in (
        "ctloop",
        "ctloop report",
        "ctloop profile",
        "ctloop profile batches",
        "evidently",
    ):
        r = runs.get(variant, {}).get("results", [{}])[0]
        if "columns" not in r:
            continue
        names[variant] = flagged(r)
        methods = sorted({v["method"] for v in r["columns"].values()})
        missed = sorted(set(DRIFTED) - set(names[variant]))
        extra = sorted(set(names[variant]) - set(DRIFTED))
        found.append(
            [
                variant,
                f"{len(names[variant])}/{len(r['columns'])}",
                f"{len(set(names[variant]) & set(DRIFTED))}/{len(DRIFTED)}",
                fmt_names(missed),
                fmt_names(extra),
                "yes" if r.get("dataset_drifted") else "no",
                "; ".join(methods),
            ]
        )
    agree = ""
    if "ctloop" in names and "evidently" in names:
        a, b = set(names["ctloop"]), set(names["evidently"])
        agree = (
            "ctloop and Evidently flag the same columns."
            if a == b
            else f"They differ: only ctloop {fmt_names(sorted(a - b))}; only Evidently "
            f"{fmt_names(sorted(b - a))}."
        )
    figures["found"] = found
    show(
        md_table(
            f"drifted features found ({len(DRIFTED)} drifted: {len(SHIFTED)} mean shifts, "
            f"{len(WIDENED)} spread changes, {len(TILTED)} category mixes)",
            [
                "tool",
                "flagged",
                "true drifts found",
                "missed",
                "flagged, not drifted",
                "dataset drift",
                "methods",
            ],
            found,
            note=agree,
        )
    )

    # false positives
    fpr_rows = []
    for size, entry in figures["fpr"].items():
        for tool in ("ctloop", "ctloop profile", "evidently"):
            e = entry.get(tool, {})
            if "error" in e or not e:
                fpr_rows.append(
                    [
                        f"{int(size):,}",
                        tool,
                        entry["pairs"],
                        "-",
                        "-",
                        "-",
                        "-",
                        "-",
                        e.get("error", "")[:60],
                    ]
                )
                continue
            fpr_rows.append(
                [
                    f"{int(size):,}",
                    tool,
                    str(entry["pairs"]),
                    f"{100 * e['flagged'] / e['tests']:.1f}%" if e["tests"] else "n/a",
                    f"{e['flagged']}/{e['tests']}",
                    f"{100 * e['numeric'] / (N_NUMERIC * entry['pairs']):.1f}%",
                    f"{100 * e['categorical'] / (len(CATEGORICAL) * entry['pairs']):.1f}%",
                    f"{e['dataset']}/{entry['pairs']}",
                    "; ".join(e["methods"]),
                ]
            )
    show(
        md_table(
            "false positives on identical distributions (current = same generator, other seed)",
            [
                "rows",
                "tool",
                "pairs",
                "features flagged",
                "flagged/tests",
                "numeric",
                "categorical",
                "dataset drift",
                "methods",
            ],
            fpr_rows,
            note="features flagged = flagged columns / (50 columns x pairs); dataset drift = pairs "
            "whose drift share reached 0.5.\nctloop profile builds each pair's reference profile "
            "first (default sample of 10,000 values per numeric column).",
        )
    )

    # agreement
    agree_rows = [
        [method, v["what"], str(v["columns"]), f"{v['max_abs']:.2e}"]
        for method, v in figures["agreement"].items()
    ]
    show(
        md_table(
            "agreement of ctloop's scores with a direct scipy/numpy computation on the same data "
            "and bins (DatasetDriftDetector)",
            ["score", "computed with", "column tests", "max abs diff"],
            agree_rows,
            note=f"On the drifted pair at {rows:,} rows with the automatic methods and with "
            "methods ks/chisquare, psi and\njensenshannon forced; and on a 1,000-row undrifted "
            "pair (automatic: ks, chisquare, ztest). Histogram\nmethods count numpy's "
            "np.histogram over the detector's edges, which are themselves checked against "
            "np.quantile.",
        )
    )
    other_rows = [
        [k, str(v["columns"]), f"{v['max_abs']:.2e}"] for k, v in figures["against_exact"].items()
    ]
    show(
        md_table(
            "the profile path and Evidently against the exact scores (same pair)",
            ["scores", "columns", "max abs diff"],
            other_rows,
            note="w = wasserstein_distance / np.std on every row; js2 / jse = scipy "
            "jensenshannon of the category counts in base 2 / base e.\nThe profile path "
            "computes Wasserstein from uniform samples of 10,000 values per side (an "
            "estimate at large\nsizes); Evidently "
            "computes the Jensen-Shannon distance in base e (scipy's default), ctloop in base 2, "
            "both\nagainst the same 0.1 threshold.",
        )
    )


# --------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 20,000 rows, fewer seeds")
    p.add_argument(
        "--rows", type=int, help="rows of the reference and of the current table (1,000,000)"
    )
    p.add_argument("--fpr-seeds", type=int, help="undrifted pairs at 1,000 rows (20; --quick 5)")
    p.add_argument(
        "--fpr-seeds-100k", type=int, help="undrifted pairs at 100,000 rows (3; --quick 1)"
    )
    p.add_argument(
        "--timeout", type=float, default=600, help="seconds before a variant is stopped (600)"
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    # the child side (one variant in this process); not for use by hand
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--pairs", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--profile", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.rows = args.rows or (20_000 if args.quick else 1_000_000)
    args.fpr_seeds = args.fpr_seeds or (5 if args.quick else 20)
    args.fpr_seeds_100k = args.fpr_seeds_100k or (1 if args.quick else 3)
    if args.rows < 1001:
        p.error("--rows must be above 1,000 (the automatic methods switch to distances there)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.variant:
        return child(args)
    print(
        f"ctloop benchmark: drift detection vs Evidently — reference {args.rows:,} x 50 vs "
        f"current {args.rows:,} x 50 (40 numeric, 10 categorical; {len(DRIFTED)} drifted)"
    )
    print_machine(["ctloop", "numpy", "pandas", "scipy", "pyarrow"], workdir=str(ROOT / "bench"))
    print(f"  peer       : {evidently_version()} ({EVIDENTLY_PYTHON.relative_to(ROOT)})")
    print_load("before")
    other = OtherLoad()
    try:
        import ctloop.monitoring.detectors  # noqa: F401
    except ImportError as exc:
        print(f"ctloop not measured: {type(exc).__name__}: {exc}")
        return 0
    figures = main_run(args)
    report(figures, args)
    print()
    print_load("after")
    other_text = other.report()
    print(f"\nother load : {other_text}")
    figures["load"] = {"other": other_text, "loadavg_after": os.getloadavg()}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
