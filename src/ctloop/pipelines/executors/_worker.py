"""A worker process of the ``local`` executor: ``python -m ctloop.pipelines.executors._worker``.

Listens on a local socket (its path is the only argument, the key comes in
``CTLOOP_WORKER_AUTHKEY``) for the pool's one connection, then runs each task it receives
and sends back its outcome, until the connection closes or an empty message arrives.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from multiprocessing.connection import Listener


def _die_with_the_pool() -> None:
    """Be killed when the driver dies, even mid-step (Linux; elsewhere the socket closing
    ends the worker after its current step)."""
    parent = int(os.environ.pop("CTLOOP_WORKER_PARENT", "0"))
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != parent:  # the driver died before the line above
        os._exit(1)


def main(address: str) -> None:
    from ctloop.pipelines.executors._payload import loads_task
    from ctloop.pipelines.worker import StepOutcome, execute

    _die_with_the_pool()

    authkey = bytes.fromhex(os.environ.pop("CTLOOP_WORKER_AUTHKEY"))
    with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
        conn = listener.accept()
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not data:
            return
        try:
            task = loads_task(data)
        except Exception as exc:
            from ctloop._internal.ids import now_ms
            from ctloop.tracking.run import describe_error

            now = now_ms()
            outcome = StepOutcome(ok=False, start_ms=now, end_ms=now, error=describe_error(exc))
        else:
            outcome = execute(task, echo=task.echo)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send_bytes(pickle.dumps(outcome))


if __name__ == "__main__":
    main(sys.argv[1])
