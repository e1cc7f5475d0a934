"""Benchmark: tracking through HTTP — ``ctloop server`` against ``mlflow server`` (issue 3).

Run from the repository root with the benchmark environment (see bench/README.md)::

    .venv-bench/bin/python bench/server.py            # 1,000 runs x 3, search over 10,000 runs
    .venv-bench/bin/python bench/server.py --quick    # 100 runs x 1, search over 1,000 runs

Both servers are real subprocesses on free loopback ports, each on a fresh SQLite store in
a temporary folder, each one process (``ctloop server``: one uvicorn process;
``mlflow server --workers 1``: one uvicorn worker), without access logs. The clients run
in this process, one request at a time.

Part 1, throughput: N runs, each with 10 params and 10 metrics.

* ``ctloop``: ``with ctloop.start_run(experiment=…, client=client) as run:``
  ``run.log_params(…)``, ``run.log_metrics({…})``; leaving the block flushes and ends it.
* ``mlflow fluent``: ``mlflow.set_experiment(…)``, ``with mlflow.start_run():``
  ``mlflow.log_params(…)``, ``mlflow.log_metrics({…})``.
* ``mlflow log_batch``: ``MlflowClient.create_run``, one ``log_batch`` with the params and
  metrics, ``set_terminated``.
* ``ctloop log_batch`` (extra row, no target): the same three calls in ctloop,
  ``client.runs.create(experiment, capture_code=False)``, ``client.runs.log_batch``,
  ``client.runs.end`` — no git state is captured, as MLflow's ``create_run`` captures none.

The MLflow server runs with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: otherwise it also
starts a job runner with seven huey consumer processes (for GenAI jobs, unused here) whose
start-up competes for the CPUs.

Every variant logs into its own experiment per repetition; repetitions run round robin
after an untimed warm-up of a few runs per variant. After each repetition (untimed) the
experiment is searched through the tool's own API and every run is checked: FINISHED,
the 10 params and the 10 metric values that were logged.

Part 2, search: a fresh store per tool is filled with M runs (untimed, through each tool's
own store API in this process, before its server starts: ctloop ``client.runs.create`` +
``log_batch`` + ``end`` on the store folder, MLflow ``MlflowClient.create_run`` +
``log_batch`` + ``set_terminated`` on the SQLite URI), then the server is started on it and
``client.runs.search("bench", filter="metrics.m0 > 0.5", limit=100)`` is timed against
``MlflowClient().search_runs([exp_id], "metrics.m0 > 0.5", max_results=100)``,
alternating, K calls each. The data is deterministic; both servers must report the same
total number of matches (counted by paging through all of them), equal to the expected.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (bench/ is not a package; see the sys.path line)
    OtherLoad,
    Stopwatch,
    ctloop_missing,
    fmt_rate,
    fmt_ratio,
    fmt_s,
    now,
    print_load,
    print_machine,
    print_table,
    verdict,
)

TARGET_THROUGHPUT = 3.0  # ctloop runs/s >= 3x MLflow's
TARGET_SEARCH_P50_S = 0.200
FILTER = "metrics.m0 > 0.5"
PAGE = 100
N_PARAMS = 10
N_METRICS = 10


# --------------------------------------------------------------------------- workload


def params_of(i: int) -> dict[str, str]:
    """Run ``i``'s 10 params; ``p0`` is its index so a read-back can find what it logged."""
    out = {"p0": str(i)}
    out.update({f"p{k}": f"value-{k}" for k in range(1, N_PARAMS)})
    return out


def value(i: int, k: int) -> float:
    """Metric ``m{k}`` of run ``i``: deterministic, spread over [0, 1)."""
    return ((i * 7919 + k * 104_729) % 10_007) / 10_007


def metrics_of(i: int) -> dict[str, float]:
    return {f"m{k}": value(i, k) for k in range(N_METRICS)}


def expected_matches(n: int) -> int:
    """How many of runs 0..n-1 match ``metrics.m0 > 0.5``."""
    return sum(1 for i in range(n) if value(i, 0) > 0.5)


class VerifyError(AssertionError):
    """A server does not hold what was logged, or search answered wrongly."""


def check_runs(found: list[tuple[str, dict[str, str], dict[str, float]]], n: int) -> None:
    """``found`` = (status, params, metrics) of every run in an experiment: runs 0..n-1."""
    if len(found) != n:
        raise VerifyError(f"{len(found)} runs stored, {n} logged")
    seen = set()
    for status, params, metrics in found:
        if status != "FINISHED":
            raise VerifyError(f"a run has status {status}, not FINISHED")
        i = int(params.get("p0", "-1"))
        if params != params_of(i):
            raise VerifyError(f"run {i}: {len(params)} params stored, not the {N_PARAMS} logged")
        want = metrics_of(i)
        if set(metrics) != set(want) or any(abs(metrics[k] - want[k]) > 1e-12 for k in want):
            raise VerifyError(f"run {i}: metrics stored {metrics}, logged {want}")
        seen.add(i)
    if seen != set(range(n)):
        raise VerifyError(f"runs stored are not 0..{n - 1} ({len(seen)} distinct)")


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of the live processes in session ``sid`` (a server and
    any worker it spawned), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[3]) == sid:  # field 6 of stat: session id
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Server:
    """A server subprocess in its own session, with its output in a log file."""

    def __init__(self, name: str, cmd: list[str], health: str, log: Path, env: dict[str, str]):
        self.name = name
        self.cmd = cmd
        self.health = health
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait_ready(self, timeout: float = 180.0) -> float:
        start = now()
        while now() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}: "
                    + self.log.read_text(errors="replace")[-2000:]
                )
            try:
                with urllib.request.urlopen(self.health, timeout=2) as resp:
                    if resp.status == 200:
                        return now() - start
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {self.health}")

    def cpu(self) -> float:
        return _session_cpu(self.proc.pid)

    def wait_quiet(self, timeout: float = 30.0) -> None:
        """Wait until the server's processes are idle (start-up work done)."""
        end = now() + timeout
        last = self.cpu()
        while now() < end:
            time.sleep(0.5)
            cpu = self.cpu()
            if cpu - last < 0.03:
                return
            last = cpu

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self._out.close()


def bin_of(tool: str) -> str:
    here = Path(sys.executable).parent / tool
    return str(here) if here.exists() else (shutil.which(tool) or tool)


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CTLOOP_STORE", None)
    env["PYTHONWARNINGS"] = "ignore"
    # mlflow server otherwise also starts a job runner with 7 huey consumer processes (for
    # its GenAI jobs; unused here) whose start-up competes for the CPUs: one process each
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


def start_ctloop(folder: Path) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        *[sys.executable, "-m", "ctloop"],
        *["--store", str(folder / "store"), "server"],
        *["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
    ]
    return Server(
        "ctloop server",
        cmd,
        f"http://127.0.0.1:{port}/healthz",
        folder / "ctloop-server.log",
        server_env(),
    )


def start_mlflow(folder: Path) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        *[bin_of("mlflow"), "server"],
        *["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"],
        *["--default-artifact-root", (folder / "artifacts").as_uri()],
        *["--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        *["--uvicorn-opts", "--log-level warning --no-access-log"],
    ]
    return Server(
        "mlflow server",
        cmd,
        f"http://127.0.0.1:{port}/health",
        folder / "mlflow-server.log",
        server_env(),
    )


def url_of(server: Server) -> str:
    return server.health.rsplit("/", 1)[0]


# --------------------------------------------------------------------------- throughput


class CtloopRuns:
    """``ctloop.start_run`` (``fluent``) or ``client.runs`` calls (``batch``), over HTTP."""

    def __init__(self, url: str, mode: str = "fluent") -> None:
        import ctloop

        self.ctloop = ctloop
        self.mode = mode
        self.client = ctloop.Client(store=url)

    def log(self, experiment: str, n: int) -> None:
        start_run, client = self.ctloop.start_run, self.client
        if self.mode == "batch":
            runs = client.runs
            for i in range(n):
                run_id = runs.create(experiment, capture_code=False).id
                runs.log_batch(
                    run_id,
                    metrics=[(k, v, 0, None) for k, v in metrics_of(i).items()],
                    params=params_of(i),
                )
                runs.end(run_id)
            return
        for i in range(n):
            with start_run(experiment=experiment, client=client) as run:
                run.log_params(params_of(i))
                run.log_metrics(metrics_of(i))

    def verify(self, experiment: str, n: int) -> None:
        found, token = [], None
        while True:
            page = self.client.runs.search(experiment, limit=1000, page_token=token)
            found += [(str(r.status), r.params, r.metrics) for r in page.runs]
            token = page.next_page_token
            if not token:
                break
        check_runs(found, n)

    def close(self) -> None:
        self.client.close()


class MlflowRuns:
    """MLflow's fluent API (``fluent``) or ``MlflowClient.log_batch`` (``batch``)."""

    def __init__(self, url: str, mode: str) -> None:
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        self.mlflow = mlflow
        self.url = url
        self.mode = mode
        self.name = f"mlflow {'fluent' if mode == 'fluent' else 'log_batch'}"
        self.client = mlflow.MlflowClient(tracking_uri=url)

    def log(self, experiment: str, n: int) -> None:
        mlflow = self.mlflow
        mlflow.set_tracking_uri(self.url)
        exp_id = mlflow.set_experiment(experiment).experiment_id
        if self.mode == "fluent":
            for i in range(n):
                with mlflow.start_run():
                    mlflow.log_params(params_of(i))
                    mlflow.log_metrics(metrics_of(i))
            return
        from mlflow.entities import Metric, Param

        client = self.client
        for i in range(n):
            run_id = client.create_run(exp_id).info.run_id
            ts = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, ts, 0) for k, v in metrics_of(i).items()],
                params=[Param(k, v) for k, v in params_of(i).items()],
            )
            client.set_terminated(run_id)

    def verify(self, experiment: str, n: int) -> None:
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            raise VerifyError(f"no experiment {experiment!r}")
        found, token = [], None
        while True:
            page = self.client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            found += [(r.info.status, r.data.params, r.data.metrics) for r in page]
            token = page.token
            if not token:
                break
        check_runs(found, n)

    def close(self) -> None:
        pass


@dataclass
class Variant:
    name: str
    tool: Any = None
    server: Server | None = None
    wall: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    status: str = "verified"

    @property
    def median(self) -> float:
        return statistics.median(self.wall) if self.wall else float("nan")

    def spread(self, n: int) -> str:
        if len(self.wall) < 2:
            return "-"
        return f"{fmt_rate(n, max(self.wall), '')}-{fmt_rate(n, min(self.wall), '')}"


def fail_variant(v: Variant, status: str) -> None:
    v.status = status
    print(f"  {v.name:<17} {status}")
    sys.stdout.flush()
    if v.tool is not None:
        v.tool.close()
    v.tool = None


def slug(name: str) -> str:
    return name.replace(" ", "-").replace("_", "-")


def time_rep(v: Variant, n: int, rep: int, repeat: int) -> None:
    experiment = f"bench-{rep + 1}-{slug(v.name)}"  # the MLflow variants share a server
    try:
        assert v.server is not None
        server_cpu = v.server.cpu()
        with Stopwatch() as sw:
            v.tool.log(experiment, n)
        server_cpu = v.server.cpu() - server_cpu
        v.tool.verify(experiment, n)
    except VerifyError as exc:
        fail_variant(v, f"INVALID: {exc}")
        return
    except Exception as exc:
        fail_variant(v, f"failed: {type(exc).__name__}: {exc}")
        return
    v.wall.append(sw.wall)
    v.client_cpu.append(sw.cpu)
    v.server_cpu.append(server_cpu)
    print(
        f"  {v.name:<17} {rep + 1}/{repeat}: {n:,} runs in {fmt_s(sw.wall)} s"
        f" ({fmt_rate(n, sw.wall)}; client cpu {fmt_s(sw.cpu)} s, server cpu"
        f" {fmt_s(server_cpu)} s; verified {n:,} runs x {N_PARAMS} params + {N_METRICS} metrics)"
    )
    sys.stdout.flush()


def run_throughput(args: argparse.Namespace, base: Path) -> list[Variant]:
    servers: list[Server] = []
    variants: list[Variant] = []
    try:
        ctl_srv = start_ctloop(base / "tput-ctloop")
        ml_srv = start_mlflow(base / "tput-mlflow")
        servers += [ctl_srv, ml_srv]
        ready = {s.name: s.wait_ready() for s in servers}
        for s in servers:
            s.wait_quiet()
        print(
            "  servers    : "
            + "; ".join(f"{name} ready in {fmt_s(t)} s" for name, t in ready.items())
        )
        plan: list[tuple[str, Server, Callable[[], Any]]] = [
            ("ctloop", ctl_srv, lambda: CtloopRuns(url_of(ctl_srv))),
            ("mlflow fluent", ml_srv, lambda: MlflowRuns(url_of(ml_srv), "fluent")),
            ("mlflow log_batch", ml_srv, lambda: MlflowRuns(url_of(ml_srv), "batch")),
            ("ctloop log_batch", ctl_srv, lambda: CtloopRuns(url_of(ctl_srv), "batch")),
        ]
        for name, server, make in plan:
            v = Variant(name, server=server)
            variants.append(v)
            try:
                v.tool = make()
                v.tool.log(f"warmup-{slug(name)}", args.warmup)
                v.tool.verify(f"warmup-{slug(name)}", args.warmup)
            except Exception as exc:
                v.tool = None
                v.status = (
                    ctloop_missing(exc)
                    if name == "ctloop"
                    else f"setup failed: {type(exc).__name__}: {exc}"
                )
                print(f"  {name:<17} {v.status}")
        for rep in range(args.repeat):
            for v in variants:
                if v.tool is not None:
                    time_rep(v, args.runs, rep, args.repeat)
        for v in variants:
            if v.tool is not None:
                v.tool.close()
    finally:
        for s in servers:
            s.stop()
    return variants


# --------------------------------------------------------------------------- search


def populate_ctloop(folder: Path, m: int) -> None:
    import ctloop

    with ctloop.Client(store=str(folder / "store")) as client:
        for i in range(m):
            run = client.runs.create("bench", capture_code=False, source={}, environment={})
            client.runs.log_batch(
                run.id,
                metrics=[(k, v, 0, None) for k, v in metrics_of(i).items()],
                params=params_of(i),
            )
            client.runs.end(run.id)


def populate_mlflow(folder: Path, m: int) -> None:
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp_id = client.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    for i in range(m):
        run_id = client.create_run(exp_id).info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics_of(i).items()],
            params=[Param(k, v) for k, v in params_of(i).items()],
        )
        client.set_terminated(run_id)


def count_ctloop(client: Any) -> int:
    total, token = 0, None
    while True:
        page = client.runs.search("bench", filter=FILTER, limit=10_000, page_token=token)
        if any(r.metrics["m0"] <= 0.5 for r in page.runs):
            raise VerifyError("ctloop search returned a run with m0 <= 0.5")
        total += len(page.runs)
        token = page.next_page_token
        if not token:
            return total


def count_mlflow(client: Any, exp_id: str) -> int:
    total, token = 0, None
    while True:
        page = client.search_runs([exp_id], FILTER, max_results=10_000, page_token=token)
        if any(r.data.metrics["m0"] <= 0.5 for r in page):
            raise VerifyError("mlflow search returned a run with m0 <= 0.5")
        total += len(page)
        token = page.token
        if not token:
            return total


@dataclass
class SearchResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    populate_s: float = float("nan")
    matches: int | None = None
    server_cpu: float = float("nan")
    status: str = "verified"

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def run_search(args: argparse.Namespace, base: Path) -> list[SearchResult]:
    import mlflow

    import ctloop

    m = args.search_runs
    want = expected_matches(m)
    ctl = SearchResult("ctloop runs.search")
    mlf = SearchResult("mlflow search_runs")
    ctl_dir, ml_dir = base / "search-ctloop", base / "search-mlflow"
    ctl_dir.mkdir()
    ml_dir.mkdir()
    for result, fill, folder in ((ctl, populate_ctloop, ctl_dir), (mlf, populate_mlflow, ml_dir)):
        try:
            start = now()
            fill(folder, m)
            result.populate_s = now() - start
            how = "client.runs.create/log_batch/end" if result is ctl else "MlflowClient"
            print(
                f"  populate   : {result.name.split()[0]} store, {m:,} runs via {how} on the"
                f" store (untimed, server not started yet): {fmt_s(result.populate_s)} s"
            )
        except Exception as exc:
            result.status = (
                ctloop_missing(exc)
                if result is ctl
                else f"populate failed: {type(exc).__name__}: {exc}"
            )
            print(f"  populate   : {result.name}: {result.status}")
        sys.stdout.flush()

    servers: list[Server] = []
    try:
        ctl_srv, ml_srv = start_ctloop(ctl_dir), start_mlflow(ml_dir)
        servers += [ctl_srv, ml_srv]
        ready = {s.name: s.wait_ready() for s in servers}
        for s in servers:
            s.wait_quiet()
        print(
            "  servers    : "
            + "; ".join(f"{name} ready in {fmt_s(t)} s" for name, t in ready.items())
        )
        calls: list[tuple[SearchResult, Server, Callable[[], int]]] = []
        if ctl.status == "verified":
            client = ctloop.Client(store=url_of(ctl_srv))

            def ctl_call() -> int:
                return len(client.runs.search("bench", filter=FILTER, limit=PAGE).runs)

            calls.append((ctl, ctl_srv, ctl_call))
        if mlf.status == "verified":
            mclient = mlflow.MlflowClient(tracking_uri=url_of(ml_srv))
            exp = mclient.get_experiment_by_name("bench")
            assert exp is not None
            exp_id = exp.experiment_id

            def ml_call() -> int:
                return len(mclient.search_runs([exp_id], FILTER, max_results=PAGE))

            calls.append((mlf, ml_srv, ml_call))
        page_want = min(PAGE, want)
        for result, _, call in calls:  # warm-up, untimed
            for _ in range(3):
                got = call()
                if got != page_want:
                    result.status = f"INVALID: a page of {got} runs, expected {page_want}"
        cpu0 = {r.name: s.cpu() for r, s, _ in calls}
        for _ in range(args.search_calls):  # alternating, so noise hits both
            for result, _, call in calls:
                start = now()
                got = call()
                result.latencies.append(now() - start)
                if got != page_want:
                    result.status = f"INVALID: a page of {got} runs, expected {page_want}"
        for result, server, _ in calls:
            result.server_cpu = (server.cpu() - cpu0[result.name]) / args.search_calls
        # all matches, paged, untimed: both must agree with the data set
        if ctl.status == "verified":
            ctl.matches = count_ctloop(client)
            client.close()
        if mlf.status == "verified":
            mlf.matches = count_mlflow(mclient, exp_id)
        for result in (ctl, mlf):
            if result.matches is not None and result.matches != want:
                result.status = f"INVALID: {result.matches:,} matches, expected {want:,}"
    finally:
        for s in servers:
            s.stop()
    return [ctl, mlf]


# --------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke size: 100 runs, 1,000 search runs, 1 repetition"
    )
    p.add_argument("--runs", type=int, help="runs per throughput repetition (default 1000)")
    p.add_argument("--search-runs", type=int, help="runs in the searched store (default 10000)")
    p.add_argument("--search-calls", type=int, default=50, help="timed searches per tool (50)")
    p.add_argument("--repeat", type=int, help="throughput repetitions per variant (default 3)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs per variant (5)")
    p.add_argument(
        "--parts", default="throughput,search", help="comma list of throughput,search (both)"
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary stores and logs")
    args = p.parse_args(argv)
    args.runs = args.runs or (100 if args.quick else 1000)
    args.search_runs = args.search_runs or (1000 if args.quick else 10_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.runs < 1 or args.search_runs < 1 or args.search_calls < 1 or args.warmup < 1:
        p.error("sizes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    warnings.filterwarnings("ignore")  # MLflow's FutureWarnings would drown the table
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.pop("CTLOOP_STORE", None)
    # the fluent API prints two "View run … at: URL" lines per run; keep the table readable
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"

    base = Path(tempfile.mkdtemp(prefix="ctloop-bench-server-"))
    print(
        f"ctloop benchmark: server — {args.runs:,} runs x ({N_PARAMS} params, {N_METRICS} "
        f"metrics) through HTTP, {args.repeat} repetition(s); search over "
        f"{args.search_runs:,} runs, {args.search_calls} calls"
    )
    print_machine(["ctloop", "mlflow", "fastapi", "uvicorn", "httpx", "sqlalchemy"], str(base))
    print(
        "  servers    : subprocesses on loopback, fresh SQLite stores in the work folder, one "
        "process each:\n"
        "               ctloop --store DIR server --log-level warning (one uvicorn process);\n"
        "               mlflow server --backend-store-uri sqlite:///… --workers 1 "
        "--uvicorn-opts '--log-level warning --no-access-log'\n"
        "               (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no job-runner processes)"
    )
    print(
        f"  clients    : in this process, one request at a time; cwd {os.getcwd()}\n"
        "               (in a git checkout both record the code version once per process:\n"
        "               ctloop the commit, dirty flag, diff digest and package versions;\n"
        "               mlflow.start_run tags the git commit)"
    )
    print_load("before")
    other = OtherLoad()
    print()

    variants: list[Variant] = []
    searches: list[SearchResult] = []
    try:
        if "throughput" in parts:
            print(f"throughput ({args.warmup} warm-up runs per variant first, untimed)")
            variants = run_throughput(args, base)
        if "search" in parts:
            print(f"\nsearch over {args.search_runs:,} runs")
            searches = run_search(args, base)
    finally:
        if args.keep:
            print(f"\nstores and server logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    targets: list[list[str]] = []
    if variants:
        ctl = next((v for v in variants if v.name == "ctloop" and v.wall), None)
        rows = []
        for v in variants:
            if not v.wall:
                rows.append([v.name, "n/a", "-", "n/a", "n/a", "n/a", "n/a", "n/a", v.status])
                continue
            speedup = (
                "-"
                if ctl is None or not v.name.startswith("mlflow")
                else fmt_ratio(v.median / ctl.median)
            )
            rows.append(
                [
                    v.name,
                    fmt_rate(args.runs, v.median),
                    v.spread(args.runs),
                    fmt_s(v.median),
                    f"{statistics.median(v.client_cpu) / args.runs * 1000:.2f}",
                    f"{statistics.median(v.server_cpu) / args.runs * 1000:.2f}",
                    f"{v.median / args.runs * 1000:.2f}",
                    speedup,
                    v.status,
                ]
            )
        print_table(
            f"throughput: {args.runs:,} runs x ({N_PARAMS} params + {N_METRICS} metrics) "
            f"through HTTP; median of {args.repeat}",
            [
                "variant",
                "runs/s",
                "min-max runs/s",
                "wall s",
                "client cpu ms/run",
                "server cpu ms/run",
                "wall ms/run",
                "ctloop speed-up",
                "check",
            ],
            rows,
            note="speed-up = the MLflow variant's median time / ctloop's (higher: ctloop faster);\n"
            "client cpu = this process (user+system); server cpu = the server's processes, "
            "from /proc;\nwall includes waiting for each other: client and server run in turn, "
            "one request at a time.",
        )
        for peer in ("mlflow fluent", "mlflow log_batch"):
            pv = next((v for v in variants if v.name == peer and v.wall), None)
            label = f"ctloop runs/s >= {TARGET_THROUGHPUT:g}x {peer}"
            if pv is None or ctl is None:
                targets.append([label, f"{TARGET_THROUGHPUT:g}x", "n/a", "n/a"])
            else:
                ratio = pv.median / ctl.median
                targets.append(
                    [label, f"{TARGET_THROUGHPUT:g}x", fmt_ratio(ratio), verdict(ratio >= 3)]
                )
        pv = next((v for v in variants if v.name == "mlflow log_batch" and v.wall), None)
        cb = next((v for v in variants if v.name == "ctloop log_batch" and v.wall), None)
        if pv is not None and cb is not None:
            targets.append(
                [
                    "(extra) ctloop log_batch vs mlflow log_batch",
                    "-",
                    fmt_ratio(pv.median / cb.median),
                    "-",
                ]
            )
    if searches:
        want = expected_matches(args.search_runs)
        rows = []
        for r in searches:
            rows.append(
                [
                    r.name,
                    fmt_s(r.pct(0.5) * 1000),
                    fmt_s(r.pct(0.95) * 1000),
                    fmt_s(min(r.latencies) * 1000) if r.latencies else "n/a",
                    fmt_s(r.server_cpu * 1000),
                    f"{r.matches:,}" if r.matches is not None else "n/a",
                    fmt_s(r.populate_s),
                    r.status,
                ]
            )
        print_table(
            f'search: "{FILTER}", page of {PAGE}, over {args.search_runs:,} runs '
            f"({want:,} match); {args.search_calls} calls each, alternating",
            [
                "call",
                "p50 ms",
                "p95 ms",
                "min ms",
                "server cpu ms/call",
                "matches (all pages)",
                "populate s (untimed)",
                "check",
            ],
            rows,
            note="latency = the client call, request to parsed page of 100 runs (params, "
            "metrics, tags);\nmatches = every page fetched after timing; both must equal the "
            "data set's count.",
        )
        ctl_s = searches[0]
        label = f"ctloop search p50 < {TARGET_SEARCH_P50_S * 1000:.0f} ms"
        if ctl_s.latencies and ctl_s.status == "verified":
            p50 = ctl_s.pct(0.5)
            targets.append(
                [label, "< 200 ms", f"{fmt_s(p50 * 1000)} ms", verdict(p50 < TARGET_SEARCH_P50_S)]
            )
        else:
            targets.append([label, "< 200 ms", "n/a", "n/a"])
    size_note = []
    if args.runs != 1000 and variants:
        size_note.append(
            f"the throughput target is set for 1,000 runs; this run used {args.runs:,}"
        )
    if args.search_runs != 10_000 and searches:
        size_note.append(
            f"the search target is set for 10,000 runs; this run used {args.search_runs:,}"
        )
    print_table(
        "targets (issue 3)",
        ["target", "required", "measured", "result"],
        targets,
        note="\n".join(f"note: {s}" for s in size_note),
    )
    print(f"\nother load : {other.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
