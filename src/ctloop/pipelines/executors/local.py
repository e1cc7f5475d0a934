"""The ``local`` executor: a pool of worker processes on this machine.

Workers are fresh interpreters (``python -m ctloop.pipelines.executors._worker``), not
forks: the driver's threads and open database connections are never copied, and the
user's ``__main__`` is not re-run in each worker (as ``multiprocessing``'s spawn would).
The pool connects to each worker over a local socket, takes one task at a time and keeps its
store connection between tasks. A task past its timeout is stopped by killing its worker;
the pool starts a new one when it next needs one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError

if TYPE_CHECKING:
    from ctloop.pipelines.worker import StepOutcome, StepTask

START_TIMEOUT = 120.0  # seconds a new worker may take to import ctloop and connect


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.task: Any = None  # the handle it is running, if any

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)


class ProcessExecutor:
    """Run attempts in up to ``max_workers`` worker processes (default: the CPU count)."""

    name = "local"
    enforces_timeouts = True
    needs_settings = True

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_parallel = max(1, max_workers or os.cpu_count() or 1)
        self._workers: list[_Worker] = []
        self._authkey = secrets.token_bytes(32)
        self._started = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._next = 0

    # --- workers ---------------------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        from multiprocessing.connection import Client

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ctloop-pool-")
        self._started += 1
        address = str(Path(self._tmp.name) / f"worker-{self._started}.sock")
        env = dict(os.environ)
        env["CTLOOP_WORKER_AUTHKEY"] = self._authkey.hex()
        env["CTLOOP_WORKER_PARENT"] = str(os.getpid())
        # the worker sees the modules the driver sees (the user's project, tests …)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "ctloop.pipelines.executors._worker", address],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                conn = Client(address, family="AF_UNIX", authkey=self._authkey)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise CtloopError(
                        f"a pipeline worker process did not start (exit code "
                        f"{process.poll()}); run the pipeline with executor='inline' to see "
                        "why"
                    ) from None
                time.sleep(0.02)
        worker = _Worker(process, conn)
        self._workers.append(worker)
        return worker

    # --- the executor protocol ------------------------------------------------------------

    def submit(self, task: StepTask) -> Any:
        from ctloop.pipelines.executors._payload import dumps_task

        idle = next((w for w in self._workers if w.task is None), None)
        if idle is None:
            idle = self._start_worker()
        self._next += 1
        handle = self._next
        idle.task = handle
        try:
            idle.conn.send_bytes(dumps_task(task))
        except (OSError, EOFError):
            self._drop(idle)
            raise
        return handle

    def wait(self, handles: list[Any], timeout: float | None) -> list[tuple[Any, StepOutcome]]:
        import pickle

        from ctloop.pipelines.worker import StepOutcome

        busy = {w.conn: w for w in self._workers if w.task in handles}
        if not busy:
            return []
        done: list[tuple[Any, StepOutcome]] = []
        for conn in wait(list(busy), timeout):
            worker = busy[conn]  # type: ignore[index]
            handle = worker.task
            try:
                outcome = pickle.loads(worker.conn.recv_bytes())
            except (EOFError, OSError):
                code = worker.process.poll()
                self._drop(worker)
                now = int(time.time() * 1000)
                outcome = StepOutcome(
                    ok=False,
                    start_ms=now,
                    end_ms=now,
                    error=f"WorkerDied: the worker process running this step exited "
                    f"(exit code {code}) before it finished",
                )
            else:
                worker.task = None
            done.append((handle, outcome))
        return done

    def cancel(self, handle: Any) -> None:
        for worker in list(self._workers):
            if worker.task == handle:
                self._drop(worker)

    def _drop(self, worker: _Worker) -> None:
        worker.stop()
        if worker in self._workers:
            self._workers.remove(worker)

    def close(self) -> None:
        for worker in list(self._workers):
            with contextlib.suppress(Exception):
                worker.conn.send_bytes(b"")  # a polite goodbye; killed below regardless
            self._drop(worker)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
