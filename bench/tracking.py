"""Benchmark: log one run (100 params, 10,000 metric points) with ctloop and with MLflow 3.

Run from the repository root with the benchmark environment (see bench/README.md)::

    .venv-bench/bin/python bench/tracking.py            # the issue's size, 3 repetitions
    .venv-bench/bin/python bench/tracking.py --quick    # 1,000 points, 1 repetition

Variants, each into its own SQLite store in a temporary folder, each repeated N times:

* ``mlflow per-call``: ``mlflow.log_param`` x100 and ``mlflow.log_metric`` x10,000 in a
  ``mlflow.start_run()`` block, the way most training scripts log.
* ``mlflow log_batch``: ``MlflowClient().log_batch`` with the params, then the metrics in
  chunks of at most 1,000 (MLflow's limit per call), then ``set_terminated``.
* ``mlflow async``: the per-call loop with ``synchronous=False``, then
  ``mlflow.flush_async_logging()`` before the run ends (an extra row; no target).
* ``ctloop``: ``with ctloop.start_run(experiment="bench") as run`` with ``run.log_params``
  and ``run.log_metric(key, value, step=i)`` x10,000; the time ends after the ``with``
  block exits, when everything is flushed and committed.

Store creation and migrations (MLflow runs its Alembic migrations on first use) happen
before timing: the experiment is created and one small warm-up run is logged into each
store first. The timed region covers creating the run, logging, and ending the run.
After every timed repetition the points are read back (``get_metric_history`` per key in
MLflow, ``client.runs.metric_history`` per key in ctloop) and the steps and values are
checked; a variant that fails the check is reported as INVALID, not timed.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (bench/ is not a package; see the sys.path line)
    OtherLoad,
    Samples,
    Stopwatch,
    ctloop_missing,
    fmt_rate,
    fmt_ratio,
    fmt_s,
    print_load,
    print_machine,
    print_table,
    verdict,
)

TARGET_VS_PER_CALL = 10.0
TARGET_VS_BATCH = 2.0


@dataclass(frozen=True)
class Workload:
    """What one run logs: ``params`` params and ``keys`` x ``steps`` metric points."""

    params: int
    keys: int
    steps: int
    batch: int = 1000  # metrics per MLflow log_batch call (MLflow allows at most 1,000)

    @property
    def points(self) -> int:
        return self.keys * self.steps

    def param_dict(self) -> dict[str, str]:
        return {f"param_{i:03d}": f"value-{i}" for i in range(self.params)}

    def key_names(self) -> list[str]:
        return [f"metric_{k}" for k in range(self.keys)]

    @staticmethod
    def value(k: int, step: int) -> float:
        return k + step / 1000.0


class VerifyError(AssertionError):
    """The store does not hold what was logged."""


def check_history(key: str, steps_values: list[tuple[int, float]], w: Workload, k: int) -> None:
    """Every step 0..steps-1 is there exactly once with the value that was logged."""
    if len(steps_values) != w.steps:
        raise VerifyError(f"{key}: {len(steps_values)} points stored, {w.steps} logged")
    by_step = dict(steps_values)
    if sorted(by_step) != list(range(w.steps)):
        raise VerifyError(f"{key}: steps stored are not 0..{w.steps - 1}")
    for step in (0, w.steps // 2, w.steps - 1):
        if abs(by_step[step] - w.value(k, step)) > 1e-9:
            raise VerifyError(f"{key}@{step}: stored {by_step[step]}, logged {w.value(k, step)}")


# --------------------------------------------------------------------------- MLflow


class MlflowVariant:
    """One MLflow way of logging, into its own SQLite store."""

    def __init__(self, name: str, folder: Path, mode: str) -> None:
        import mlflow

        # mlflow configures its logger on import; keep its INFO lines out of the table
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        self.name = name
        self.mode = mode  # per-call | batch | async
        self.mlflow = mlflow
        folder.mkdir(parents=True, exist_ok=True)
        self.uri = f"sqlite:///{folder / 'mlflow.db'}"
        mlflow.set_tracking_uri(self.uri)
        # Creating the experiment runs MLflow's migrations: setup, not timed.
        self.experiment_id = mlflow.create_experiment(
            "bench", artifact_location=(folder / "artifacts").as_uri()
        )
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)

    def log_run(self, w: Workload) -> str:
        mlflow = self.mlflow
        mlflow.set_tracking_uri(self.uri)
        if self.mode == "batch":
            return self._log_batch(w)
        sync = self.mode != "async"
        params = w.param_dict()
        keys = w.key_names()
        with mlflow.start_run(experiment_id=self.experiment_id) as run:
            for name, value in params.items():
                mlflow.log_param(name, value, synchronous=sync)
            for step in range(w.steps):
                for k, key in enumerate(keys):
                    mlflow.log_metric(key, w.value(k, step), step=step, synchronous=sync)
            if not sync:
                # end_run does not wait for the async queue; flush so the run is durable
                mlflow.flush_async_logging()
        return str(run.info.run_id)

    def _log_batch(self, w: Workload) -> str:
        from mlflow.entities import Metric, Param

        client = self.client
        run_id = client.create_run(self.experiment_id).info.run_id
        params = [Param(k, v) for k, v in w.param_dict().items()]
        for i in range(0, len(params), 100):  # MLflow: at most 100 params per call
            client.log_batch(run_id, params=params[i : i + 100])
        keys = w.key_names()
        chunk: list[Any] = []
        for step in range(w.steps):
            ts = int(time.time() * 1000)
            for k, key in enumerate(keys):
                chunk.append(Metric(key, w.value(k, step), ts, step))
                if len(chunk) == w.batch:
                    client.log_batch(run_id, metrics=chunk)
                    chunk = []
        if chunk:
            client.log_batch(run_id, metrics=chunk)
        client.set_terminated(run_id)
        return str(run_id)

    def verify(self, run_id: str, w: Workload) -> None:
        run = self.client.get_run(run_id)
        if run.info.status != "FINISHED":
            raise VerifyError(f"run status is {run.info.status}, not FINISHED")
        if run.data.params != w.param_dict():
            raise VerifyError(f"{len(run.data.params)} params stored, {w.params} logged")
        for k, key in enumerate(w.key_names()):
            history = self.client.get_metric_history(run_id, key)
            check_history(key, [(m.step, m.value) for m in history], w, k)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- ctloop


class CtloopVariant:
    """ctloop embedded: a store folder (SQLite + artifacts) in the temporary folder."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.store = str(folder)
        # the fluent API reads the store from the environment, like a user's shell would
        os.environ["CTLOOP_STORE"] = self.store
        import ctloop

        self.ctloop = ctloop
        self.client = ctloop.Client(store=self.store)  # creates the store: setup, not timed
        self.client.experiments.get_or_create("bench")

    def log_run(self, w: Workload) -> str:
        ctloop = self.ctloop
        params = w.param_dict()
        keys = w.key_names()
        with ctloop.start_run(experiment="bench") as run:
            run.log_params(params)
            for step in range(w.steps):
                for k, key in enumerate(keys):
                    run.log_metric(key, w.value(k, step), step=step)
        return str(run.id)

    def verify(self, run_id: str, w: Workload) -> None:
        record = self.client.runs.get(run_id)
        if str(record.status) != "FINISHED":
            raise VerifyError(f"run status is {record.status}, not FINISHED")
        if record.params != w.param_dict():
            raise VerifyError(f"{len(record.params)} params stored, {w.params} logged")
        for k, key in enumerate(w.key_names()):
            history = self.client.runs.metric_history(run_id, key)
            check_history(key, [(m.step, m.value) for m in history], w, k)

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- driver


@dataclass
class Entry:
    """One variant's state in the round robin."""

    name: str
    variant: Any = None
    samples: Samples | None = None
    status: str = "verified"


def set_up(name: str, make: Callable[[], Any], warmup: Workload) -> Entry:
    """Create a variant's store and log one small warm-up run into it (not timed)."""
    try:
        variant = make()
        variant.verify(variant.log_run(warmup), warmup)
    except Exception as exc:  # a missing ctloop API or peer: report, go on with the others
        if name == "ctloop":
            return Entry(name, status=ctloop_missing(exc))
        return Entry(name, status=f"setup failed: {type(exc).__name__}: {exc}")
    return Entry(name, variant, Samples(name))


def time_one(entry: Entry, w: Workload, i: int, repeat: int) -> None:
    """Time one run of one variant, then verify it (outside the timed region)."""
    try:
        with Stopwatch() as sw:
            run_id = entry.variant.log_run(w)
        entry.variant.verify(run_id, w)
    except VerifyError as exc:
        entry.status = f"INVALID: {exc}"
    except Exception as exc:
        entry.status = f"failed: {type(exc).__name__}: {exc}"
    else:
        assert entry.samples is not None
        entry.samples.add(sw.wall, sw.cpu)
        print(
            f"  {entry.name:<18} {i + 1}/{repeat}: {fmt_s(sw.wall)} s (cpu {fmt_s(sw.cpu)} s;"
            f" verified {w.points:,} points, {w.params} params)"
        )
        sys.stdout.flush()
        return
    print(f"  {entry.name:<18} {entry.status}")
    entry.samples = None
    entry.variant.close()
    entry.variant = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke size: 10 keys x 100 steps, 1 repetition"
    )
    p.add_argument("--params", type=int, default=100, help="params per run (default 100)")
    p.add_argument("--keys", type=int, help="metric keys (default 10)")
    p.add_argument("--steps", type=int, help="steps per key (default 1000; --quick 100)")
    p.add_argument("--repeat", type=int, help="timed repetitions per variant (default 3)")
    p.add_argument(
        "--batch",
        type=int,
        default=1000,
        help="metrics per MLflow log_batch call, at most 1000 (default 1000)",
    )
    p.add_argument(
        "--variants",
        default="per-call,batch,async,ctloop",
        help="comma list of per-call,batch,async,ctloop (default: all)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary stores")
    args = p.parse_args(argv)
    args.keys = args.keys or 10
    args.steps = args.steps or (100 if args.quick else 1000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    if not 1 <= args.batch <= 1000:
        p.error("--batch must be between 1 and 1000 (MLflow's limit)")
    if not 0 <= args.params <= 100:
        p.error("--params must be between 0 and 100 (the params go in one MLflow log_batch)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    w = Workload(params=args.params, keys=args.keys, steps=args.steps, batch=args.batch)
    warmup = Workload(params=min(10, args.params), keys=2, steps=10, batch=args.batch)
    wanted = {v.strip() for v in args.variants.split(",") if v.strip()}

    warnings.filterwarnings("ignore")  # MLflow's FutureWarnings would drown the table
    logging.getLogger("alembic").setLevel(logging.WARNING)

    base = Path(tempfile.mkdtemp(prefix="ctloop-bench-tracking-"))
    print(
        "ctloop benchmark: tracking — one run, "
        f"{w.params} params + {w.points:,} metric points ({w.keys} keys x {w.steps} steps)"
    )
    print_machine(["ctloop", "mlflow", "sqlalchemy", "alembic"], workdir=str(base))
    print(
        f"  repetitions: {args.repeat} per variant (median reported), round robin, after one"
        " warm-up run per store; every store is SQLite in the work folder"
    )
    print_load("before")
    other = OtherLoad()
    print()

    plan: list[tuple[str, str, Callable[[], Any]]] = [
        (
            "per-call",
            "mlflow per-call",
            lambda: MlflowVariant("mlflow per-call", base / "mlflow-per-call", "per-call"),
        ),
        (
            "batch",
            "mlflow log_batch",
            lambda: MlflowVariant("mlflow log_batch", base / "mlflow-batch", "batch"),
        ),
        (
            "async",
            "mlflow async",
            lambda: MlflowVariant("mlflow async", base / "mlflow-async", "async"),
        ),
        ("ctloop", "ctloop", lambda: CtloopVariant("ctloop", base / "ctloop")),
    ]
    entries: list[Entry] = []
    try:
        for key, name, make in plan:
            if key in wanted:
                entries.append(set_up(name, make, warmup))
                if entries[-1].variant is None:
                    print(f"  {name:<18} {entries[-1].status}")
        # round robin: noise from anything else on the machine spreads over all variants
        for i in range(args.repeat):
            for entry in entries:
                if entry.variant is not None:
                    time_one(entry, w, i, args.repeat)
        for entry in entries:
            if entry.variant is not None:
                entry.variant.close()
    finally:
        if args.keep:
            print(f"\nstores kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    results = {e.name: (e.samples, e.status) for e in entries}
    ctl = results.get("ctloop", (None, ""))[0]
    rows = []
    for name, (samples, status) in results.items():
        if samples is None:
            rows.append([name, "n/a", "-", "n/a", "n/a", "n/a", status])
            continue
        speedup = "-" if name == "ctloop" or ctl is None else fmt_ratio(samples.median / ctl.median)
        rows.append(
            [
                name,
                fmt_s(samples.median),
                samples.spread,
                fmt_s(samples.cpu_median),
                fmt_rate(w.points, samples.median),
                speedup,
                status,
            ]
        )
    print_table(
        f"one run: {w.params} params + {w.points:,} metric points; median of {args.repeat}",
        ["variant", "median s", "min-max s", "cpu s", "points/s", "ctloop speed-up", "check"],
        rows,
        note="cpu s = median CPU seconds of the run (user+system, all threads);\n"
        "speed-up = the MLflow variant's median / ctloop's median (higher: ctloop faster);\n"
        "durability: MLflow's SQLite store commits each call in rollback-journal mode with "
        "synchronous=FULL\n(an fsync per call); ctloop's uses WAL with synchronous=NORMAL "
        "(commits survive a crash of the\nprocess; the last ones may be lost on power "
        "loss). Both have committed everything when timing ends.",
    )

    def target_row(peer: str, factor: float) -> list[str]:
        samples = results.get(peer, (None, ""))[0]
        if samples is None or ctl is None:
            return [f"ctloop >= {factor:g}x faster than {peer}", f"{factor:g}x", "n/a", "n/a"]
        ratio = samples.median / ctl.median
        return [
            f"ctloop >= {factor:g}x faster than {peer}",
            f"{factor:g}x",
            fmt_ratio(ratio),
            verdict(ratio >= factor),
        ]

    size_note = ""
    if w.points != 10_000 or w.params != 100:
        size_note = (
            f"note: the targets are set for 100 params + 10,000 points; this run used "
            f"{w.params} + {w.points:,}"
        )
    print_table(
        "targets (issue 2)",
        ["target", "required", "measured", "result"],
        [
            target_row("mlflow per-call", TARGET_VS_PER_CALL),
            target_row("mlflow log_batch", TARGET_VS_BATCH),
        ],
        note=size_note,
    )
    print(f"\nother load : {other.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
