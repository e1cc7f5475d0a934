"""Benchmark: a 20-step pipeline, cold and fully cached — ctloop pipelines vs Prefect 3.

Run from the repository root with the benchmark environment (see bench/README.md)::

    .venv-bench/bin/python bench/pipeline.py            # 20 steps, 5 repetitions
    .venv-bench/bin/python bench/pipeline.py --quick    # 20 steps, 1 repetition

The workload is a chain of trivial steps, the same shape in both tools: step ``i`` takes
the previous step's int and returns it plus one (``start`` goes into the first step), so
the last step returns ``start + 20``. Both tools store every step's output and cache it.

* ``ctloop``: ``@step def add_one(x: int) -> int`` called 20 times in a ``@pipeline``;
  ``chain.run(executor=…, client=ctloop.Client(store=…), start=…)``. Outputs go to the
  store's artifact store (JSON), keys are the step's code + params + input digests.
* ``prefect``: ``@task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True,
  result_storage=Path(…))`` called 20 times in a ``@flow``. Results are pickled into a
  local folder; the flow runs against Prefect's default API, a temporary server that
  Prefect starts in a subprocess on a fresh SQLite database under ``PREFECT_HOME``.

Variants, each repetition in a fresh Python process with a fresh store:

* ``ctloop inline``: cold run and cached re-run with ``executor="inline"`` (this thread);
* ``ctloop local``: the same with ``executor="local"`` (worker processes; the cold run
  starts one, the cached re-run must start none);
* ``prefect``: the flow, cold and re-run.

Per repetition and variant, in its own process (a fresh interpreter, so no variant
inherits another's imports, threads or caches): imports, then one untimed warm-up run of
the same pipeline with ``start=1000`` (no cache key in common with ``start=0``; it pays
first-use costs, and for Prefect the start of its temporary API server), then the timed
cold run with ``start=0`` into a store no run has used (ctloop: a new store folder;
Prefect: a new result folder, the API database holding only the warm-up flow run), then
the timed re-run with ``start=0``, which must be served entirely from the cache. Timing
covers the call that runs the pipeline, from the call to its return. After timing
(untimed) every run is checked: ctloop's ``PipelineRun`` is COMPLETED with 20 step runs,
all COMPLETED with no cache hit (cold) or all CACHED with 20 cache hits (re-run), and the
last step's stored output is 20; Prefect's flow returns 20 and the API holds 20 task runs
of the flow run, all ``Completed`` (cold) or all ``Cached`` (re-run). A variant whose
check fails is INVALID, not timed. The processes run round robin, so noise from anything
else on the machine spreads over all variants.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (bench/ is not a package; see the sys.path line)
    OtherLoad,
    Samples,
    cpu_seconds,
    ctloop_missing,
    fmt_ratio,
    fmt_s,
    now,
    print_load,
    print_machine,
    print_table,
    verdict,
)

TARGET_CACHED_S = 1.0  # ctloop's fully cached re-run of 20 steps: under 1 s
TARGET_VS_PREFECT = 5.0  # ... and >= 5x faster than Prefect's cached re-run
START = 0
WARMUP_START = 1000  # the warm-up run's start: shares no cache key with START
CHILD_TIMEOUT_S = 900.0
VARIANTS = {
    "ctloop-inline": "ctloop inline",
    "ctloop-local": "ctloop local",
    "prefect": "prefect",
}


class VerifyError(AssertionError):
    """A run did not do what was asked (wrong result, or not served from the cache)."""


# --------------------------------------------------------------------------- CPU of a tree


def _proc_stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu() -> float:
    """CPU seconds of this process, the children it has reaped (ctloop's workers, once the
    run has closed them) and its live descendants (Prefect's temporary API server)."""
    procs = {pid: st for pid in os.listdir("/proc") if pid.isdigit() and (st := _proc_stat(pid))}
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        kids.setdefault(ppid, []).append(int(pid))
    total, todo = cpu_seconds(), list(kids.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        total += procs[str(pid)][1]
        todo.extend(kids.get(pid, []))
    return total


def reaped_children_cpu() -> float:
    """CPU seconds of the child processes this process has waited for (exited workers)."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def measure(fn: Any) -> tuple[float, float, Any]:
    """(wall s, process-tree CPU s, result) of one call; /proc is read outside the wall time."""
    cpu0 = tree_cpu()
    start = now()
    result = fn()
    wall = now() - start
    return wall, tree_cpu() - cpu0, result


# --------------------------------------------------------------------------- ctloop (child)


def ctloop_chain() -> Any:
    """The ctloop pipeline: ``steps`` x ``add_one``, each fed the previous one's output."""
    from ctloop import pipeline, step

    @step
    def add_one(x: int) -> int:
        return x + 1

    @pipeline
    def chain(start: int = 0, steps: int = 20) -> None:
        x = add_one(start)
        for _ in range(steps - 1):
            x = add_one(x)

    return chain


def check_ctloop(run: Any, steps: int, start: int, cached: bool) -> None:
    if str(run.status) != "COMPLETED":
        raise VerifyError(f"pipeline run {run.id} is {run.status}, not COMPLETED")
    if len(run.steps) != steps:
        raise VerifyError(f"{len(run.steps)} step runs recorded, {steps} planned")
    statuses = Counter(str(s.status) for s in run.steps)
    want = "CACHED" if cached else "COMPLETED"
    hits = run.cache_hits
    if statuses != Counter({want: steps}) or hits != (steps if cached else 0):
        raise VerifyError(f"step runs {dict(statuses)}, {hits} cache hits; expected {steps} {want}")
    last = run.output(run.steps[-1].name)
    if last != start + steps:
        raise VerifyError(f"the last step's stored output is {last!r}, not {start + steps}")


def child_ctloop(executor: str, folder: Path, steps: int) -> dict[str, Any]:
    import ctloop

    chain = ctloop_chain()
    warm = ctloop.Client(store=str(folder / "store-warmup"))
    first, _, run = measure(
        lambda: chain.run(executor=executor, client=warm, start=WARMUP_START, steps=steps)
    )
    check_ctloop(run, steps, WARMUP_START, cached=False)
    warm.close()

    client = ctloop.Client(store=str(folder / "store"))  # creates the store: untimed
    wall, cpu, run = measure(
        lambda: chain.run(executor=executor, client=client, start=START, steps=steps)
    )
    check_ctloop(run, steps, START, cached=False)
    cold = {"wall": wall, "cpu": cpu, "check": f"{steps} completed"}

    reaped = reaped_children_cpu()
    wall, cpu, run = measure(
        lambda: chain.run(executor=executor, client=client, start=START, steps=steps)
    )
    worker_cpu = reaped_children_cpu() - reaped
    check_ctloop(run, steps, START, cached=True)
    if worker_cpu > 0:
        raise VerifyError(
            f"the cached re-run ran child processes ({worker_cpu:.2f} CPU-s): a worker started"
        )
    cached = {"wall": wall, "cpu": cpu, "check": f"{run.cache_hits} cache hits"}
    client.close()
    return {"first": first, "cold": cold, "cached": cached}


# --------------------------------------------------------------------------- Prefect (child)


def prefect_chain(results: Path) -> Any:
    """The Prefect flow: ``steps`` x ``add_one``, results persisted into ``results``."""
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE

    @task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True, result_storage=results)
    def add_one(x: int) -> int:
        return x + 1

    @flow
    def chain(start: int = 0, steps: int = 20) -> int:
        x = start
        for _ in range(steps):
            x = add_one(x)
        return x

    return chain


def prefect_task_states(flow_run_id: Any, steps: int) -> Counter[str]:
    """The state names of the flow run's task runs, as the API holds them.

    Prefect 3 reports task runs to its API through events that the server records in the
    background, so the last few may arrive a moment after the flow has returned: poll.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    found: Counter[str] = Counter()
    deadline = now() + 60
    with get_client(sync_client=True) as client:
        while now() < deadline:
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            found = Counter(tr.state.name if tr.state else "no state" for tr in task_runs)
            final = sum(found[name] for name in ("Completed", "Cached", "Failed"))
            if final >= steps:
                break
            time.sleep(0.2)
    return found


def check_prefect(state: Any, steps: int, start: int, cached: bool) -> str:
    if not state.is_completed():
        raise VerifyError(f"the flow run ended {state.name}, not Completed")
    value = state.result()
    if value != start + steps:
        raise VerifyError(f"the flow returned {value!r}, not {start + steps}")
    found = prefect_task_states(state.state_details.flow_run_id, steps)
    want = "Cached" if cached else "Completed"
    if found != Counter({want: steps}):
        raise VerifyError(f"task runs {dict(found)}; expected {steps} {want}")
    return f"{found[want]} {want.lower()}"


def child_prefect(folder: Path, steps: int) -> dict[str, Any]:
    warm = prefect_chain(folder / "results-warmup")
    # the first flow run starts Prefect's temporary API server and migrates its database
    first, _, state = measure(lambda: warm(start=WARMUP_START, steps=steps, return_state=True))
    check_prefect(state, steps, WARMUP_START, cached=False)

    chain = prefect_chain(folder / "results")
    wall, cpu, state = measure(lambda: chain(start=START, steps=steps, return_state=True))
    cold = {"wall": wall, "cpu": cpu, "check": check_prefect(state, steps, START, cached=False)}
    wall, cpu, state = measure(lambda: chain(start=START, steps=steps, return_state=True))
    cached = {"wall": wall, "cpu": cpu, "check": check_prefect(state, steps, START, cached=True)}
    return {"first": first, "cold": cold, "cached": cached}


def child_main(variant: str, folder: Path, steps: int, result: Path) -> int:
    """One repetition of one variant, in this (fresh) process; writes its timings as JSON."""
    warnings.filterwarnings("ignore")
    out: dict[str, Any]
    try:
        if variant == "prefect":
            out = child_prefect(folder, steps)
        else:
            out = child_ctloop(variant.removeprefix("ctloop-"), folder, steps)
    except VerifyError as exc:
        out = {"status": f"INVALID: {exc}"}
    except Exception as exc:
        import traceback

        traceback.print_exc()  # into the child's log
        missing = variant.startswith("ctloop") and isinstance(exc, ImportError | AttributeError)
        last = (str(exc).strip().splitlines() or [""])[-1][:200]
        out = {
            "status": ctloop_missing(exc) if missing else f"failed: {type(exc).__name__}: {last}"
        }
    result.write_text(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- driver


def child_env(base: Path, folder: Path, variant: str) -> dict[str, str]:
    """The environment of one child: isolated from the user's ctloop and Prefect settings.

    Bytecode is cached under the work folder even where ``PYTHONDONTWRITEBYTECODE`` is set,
    as an installed package would have it: ctloop's worker processes (started by each cold
    ``local`` run) would otherwise recompile ctloop's editable sources every time.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("CTLOOP_STORE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    if variant == "prefect":
        # no PREFECT_API_URL: Prefect starts its temporary server on a database in this home
        env["PREFECT_HOME"] = str(folder / "prefect-home")
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no network calls from the server
        # its default, 20 s, is too short for a server start on a busy 2-CPU machine (setup)
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    return env


@dataclass
class Entry:
    """One variant's results over the repetitions."""

    key: str
    name: str
    first: list[float] = field(default_factory=list)
    cold: Samples = field(default_factory=lambda: Samples("cold"))
    cached: Samples = field(default_factory=lambda: Samples("cached"))
    checks: dict[str, str] = field(default_factory=dict)
    status: str = "verified"

    @property
    def failed(self) -> bool:
        return self.status != "verified"


def one_repetition(e: Entry, base: Path, steps: int, i: int, repeat: int) -> None:
    """Run one repetition of ``e`` in a fresh process and record it."""
    folder = base / f"{e.key}-{i + 1}"
    folder.mkdir()
    result, log = folder / "result.json", folder / "child.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", e.key]
    cmd += ["--folder", str(folder), "--steps", str(steps), "--result", str(result)]
    try:
        with log.open("wb") as out:
            proc = subprocess.run(
                cmd,
                env=child_env(base, folder, e.key),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=CHILD_TIMEOUT_S,
            )
        if proc.returncode != 0 or not result.exists():
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"exit code {proc.returncode}: {' | '.join(tail)}")
        data = json.loads(result.read_text())
    except Exception as exc:
        data = {"status": f"failed: {type(exc).__name__}: {exc}"}
    if "status" in data:
        e.status = data["status"]
        print(f"  {e.name:<14} {i + 1}/{repeat}: {e.status} (log: {log})")
        sys.stdout.flush()
        return
    e.first.append(data["first"])
    e.cold.add(data["cold"]["wall"], data["cold"]["cpu"])
    e.cached.add(data["cached"]["wall"], data["cached"]["cpu"])
    e.checks = {"cold": data["cold"]["check"], "cached": data["cached"]["check"]}
    print(
        f"  {e.name:<14} {i + 1}/{repeat}: cold {fmt_s(data['cold']['wall'])} s"
        f" (cpu {fmt_s(data['cold']['cpu'])} s; verified: {data['cold']['check']}),"
        f" cached {fmt_s(data['cached']['wall'])} s (cpu {fmt_s(data['cached']['cpu'])} s;"
        f" verified: {data['cached']['check']}); untimed warm-up run {fmt_s(data['first'])} s"
    )
    sys.stdout.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repetition")
    p.add_argument("--steps", type=int, default=20, help="steps in the chain (default 20)")
    p.add_argument("--repeat", type=int, help="repetitions per variant (default 5; --quick 1)")
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma list of {','.join(VARIANTS)} (default: all)",
    )
    p.add_argument("--keep", action="store_true", help="keep the stores and the child logs")
    # one repetition of one variant, in a fresh process (what the driver runs)
    p.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 5)
    if args.steps < 1 or args.repeat < 1:
        p.error("--steps and --repeat must be at least 1")
    unknown = {v.strip() for v in args.variants.split(",") if v.strip()} - set(VARIANTS)
    if unknown:
        p.error(f"unknown variant(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.folder, args.steps, args.result)
    wanted = [k for k in VARIANTS if k in {v.strip() for v in args.variants.split(",")}]

    base = Path(tempfile.mkdtemp(prefix="ctloop-bench-pipeline-"))
    print(
        f"ctloop benchmark: pipeline — a chain of {args.steps} trivial steps (int + 1), cold and "
        f"fully cached, {args.repeat} repetition(s), median reported"
    )
    print_machine(["ctloop", "prefect", "cloudpickle", "sqlalchemy", "pydantic"], str(base))
    print(
        "  processes  : every repetition of every variant is a fresh Python process with a "
        "fresh store;\n"
        f"               in it, untimed: imports and one warm-up run (start={WARMUP_START}: no "
        "cache key in common;\n"
        "               Prefect starts its temporary API server here); then timed: the cold "
        f"run (start={START})\n"
        "               into an unused store, then the same run again (fully cached)\n"
        "  prefect    : @task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True, "
        "result_storage=Path(…));\n"
        "               PREFECT_HOME in the work folder, no PREFECT_API_URL (a temporary "
        "server on a fresh SQLite db)\n"
        f"  cwd        : {os.getcwd()} (ctloop records the code version of each pipeline run)"
    )
    print_load("before")
    other = OtherLoad()
    print()

    entries = [Entry(k, VARIANTS[k]) for k in wanted]
    for e in entries:  # a missing tool is reported in the table; the others still run
        module = "prefect" if e.key == "prefect" else "ctloop"
        if importlib.util.find_spec(module) is None:
            e.status = (
                f"not installed: pip install '{'prefect>=3,<4' if module == 'prefect' else '-e .'}'"
            )
            print(f"  {e.name:<14} {e.status}")
    try:
        for i in range(args.repeat):  # round robin: noise spreads over all variants
            for e in entries:
                if not e.failed:
                    one_repetition(e, base, args.steps, i, args.repeat)
    finally:
        if args.keep:
            print(f"\nstores and child logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    report(entries, args)
    print(f"\nother load : {other.report()}")
    return 0


def report(entries: list[Entry], args: argparse.Namespace) -> None:
    by_key = {e.key: e for e in entries}
    peer = by_key.get("prefect")
    peer_ok = peer is not None and not peer.failed and bool(peer.cold.seconds)
    rows = []
    for e in entries:
        for run in ("cold", "cached"):
            samples: Samples = getattr(e, run)
            if e.failed or not samples.seconds:
                rows.append([e.name, run, "n/a", "-", "n/a", "n/a", "n/a", e.status])
                continue
            speedup = "-"
            if peer_ok and e.key != "prefect":
                assert peer is not None
                speedup = fmt_ratio(getattr(peer, run).median / samples.median)
            rows.append(
                [
                    e.name,
                    run,
                    fmt_s(samples.median),
                    samples.spread,
                    fmt_s(samples.cpu_median),
                    f"{samples.median / args.steps * 1000:.1f}",
                    speedup,
                    f"verified: {e.checks[run]}",
                ]
            )
    print_table(
        f"pipeline: {args.steps} steps (int + 1, chained); median of {args.repeat}, "
        "each repetition a fresh process and store",
        ["variant", "run", "median s", "min-max s", "cpu s", "ms/step", "vs prefect", "check"],
        rows,
        note="cold = first run of the pipeline's inputs into an unused store; cached = the same "
        "run again, every step\nserved from the cache; cpu s = median CPU seconds of the process "
        "and its children (ctloop's workers,\nPrefect's temporary API server); vs prefect = "
        "Prefect's median for the same run / the variant's\n(higher: ctloop faster); imports "
        "and each process's first (warm-up) run are not timed.",
    )
    firsts = [e for e in entries if e.first]
    if firsts:
        print(
            "untimed warm-up run (first run in a new process; Prefect's includes starting its "
            "temporary API server): "
            + "; ".join(f"{e.name} {fmt_s(sorted(e.first)[len(e.first) // 2])} s" for e in firsts)
        )

    local = by_key.get("ctloop-local")
    ok = local is not None and not local.failed and bool(local.cached.seconds)
    targets = []
    label = f"ctloop cached re-run (local) of {args.steps} steps < {TARGET_CACHED_S:g} s"
    if ok:
        assert local is not None
        med = local.cached.median
        targets.append(
            [label, f"< {TARGET_CACHED_S:g} s", f"{fmt_s(med)} s", verdict(med < TARGET_CACHED_S)]
        )
    else:
        targets.append([label, f"< {TARGET_CACHED_S:g} s", "n/a", "n/a"])
    label = f"ctloop cached re-run >= {TARGET_VS_PREFECT:g}x faster than prefect's"
    if ok and peer_ok:
        assert local is not None and peer is not None
        ratio = peer.cached.median / local.cached.median
        targets.append(
            [
                label,
                f"{TARGET_VS_PREFECT:g}x",
                fmt_ratio(ratio),
                verdict(ratio >= TARGET_VS_PREFECT),
            ]
        )
    else:
        targets.append([label, f"{TARGET_VS_PREFECT:g}x", "n/a", "n/a"])
    for key in ("ctloop-local", "ctloop-inline"):
        e = by_key.get(key)
        if e is not None and not e.failed and e.cold.seconds and peer_ok:
            assert peer is not None
            targets.append(
                [
                    f"(extra) {e.name} cold vs prefect cold",
                    "-",
                    fmt_ratio(peer.cold.median / e.cold.median),
                    "-",
                ]
            )
    print_table(
        "targets (pipelines issue)",
        ["target", "required", "measured", "result"],
        targets,
        note=""
        if args.steps == 20
        else f"note: the targets are set for 20 steps; this run used {args.steps}",
    )


if __name__ == "__main__":
    sys.exit(main())
