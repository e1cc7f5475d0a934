"""Evidently's half of bench/drift.py: ``DataDriftPreset`` on Parquet files, in its own env.

Evidently 0.7 does not import with pandas 3 (ctloop's pin), so this script runs under
``.venv-bench-evidently/bin/python`` (see the Makefile), never imports ctloop, and is
called by ``bench/drift.py`` once per measured run (a fresh process, so its peak RSS is
Evidently's alone)::

    python bench/_drift_evidently.py --pairs PAIRS.json --numeric a,b --categorical c,d \
        --out RESULT.json [--read-only]

``PAIRS.json`` is a list of ``[reference.parquet, current.parquet]``. For each pair the
script reads both files with ``pandas.read_parquet`` (timed: ``read_s``), wraps them in
``Dataset.from_pandas`` with an explicit ``DataDefinition`` (the same numeric and
categorical columns ctloop tests), runs ``Report([DataDriftPreset()])`` with Evidently's
defaults and reads every column's ``ValueDrift`` back from the snapshot (timed:
``compute_s``). ``--read-only`` stops after reading (the read time and memory alone).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

# Evidently's p-value tests: a column drifted when p < threshold; its distances drift at
# score >= threshold (evidently.legacy.calculations.stattests)
P_VALUE_MARK = "p_value"


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def status_kib(key: str) -> int:
    """A memory figure of this process from /proc/self/status (VmHWM: peak, VmRSS: now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_pair(
    reference_path: str,
    current_path: str,
    numeric: list[str],
    categorical: list[str],
    read_only: bool,
) -> dict[str, Any]:
    import pandas as pd

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    t1 = time.perf_counter()
    out: dict[str, Any] = {"read_s": t1 - t0, "rows": [len(reference), len(current)]}
    if read_only:
        out.update(compute_s=0.0, cpu_s=cpu_seconds() - cpu0)
        return out

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    columns: dict[str, dict[str, Any]] = {}
    drifted_count = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            method, threshold, value = config["method"], config["threshold"], metric["value"]
            is_p = P_VALUE_MARK in method
            columns[config["column"]] = {
                "method": method,
                "score": float(value),
                "threshold": float(threshold),
                "drifted": bool(value < threshold if is_p else value >= threshold),
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            drifted_count = metric["value"]
    t2 = time.perf_counter()
    out.update(
        compute_s=t2 - t1,
        cpu_s=cpu_seconds() - cpu0,
        columns=columns,
        dataset_drifted=bool(drifted_count and drifted_count["share"] >= 0.5),
        drifted_columns_count=drifted_count,
    )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", required=True, help="JSON list of [reference, current] paths")
    p.add_argument("--numeric", required=True, help="numeric columns, comma-separated")
    p.add_argument("--categorical", required=True, help="categorical columns, comma-separated")
    p.add_argument("--out", required=True, help="where to write the result JSON")
    p.add_argument("--read-only", action="store_true", help="only read the files")
    args = p.parse_args()

    t0 = time.perf_counter()
    import pandas  # noqa: F401  (import time is reported apart from the work)

    if not args.read_only:
        import evidently  # noqa: F401
        from evidently.presets import DataDriftPreset  # noqa: F401
    import_s = time.perf_counter() - t0
    import_rss = status_kib("VmRSS")

    import evidently as ev
    import pandas as pd

    pairs = json.loads(Path(args.pairs).read_text())
    numeric = [c for c in args.numeric.split(",") if c]
    categorical = [c for c in args.categorical.split(",") if c]
    results = [run_pair(r, c, numeric, categorical, args.read_only) for r, c in pairs]
    Path(args.out).write_text(
        json.dumps(
            {
                "import_s": import_s,
                "import_rss_kib": import_rss,
                "versions": {"evidently": ev.__version__, "pandas": pd.__version__},
                "results": results,
                "vmhwm_kib": status_kib("VmHWM"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
