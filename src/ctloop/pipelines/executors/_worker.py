"""A worker process of the ``local`` executor: ``python -m ctloop.pipelines.executors._worker``.

Listens on a local socket (its path is the only argument, the key comes in
``CTLOOP_WORKER_AUTHKEY``) for the pool's one connection, then runs each task it receives
and sends back its outcome, until the connection closes or an empty message arrives.
"""

from __future__ import annotations

import os
import pickle
import sys
from multiprocessing.connection import Listener


def main(address: str) -> None:
    from ctloop.pipelines.executors._payload import loads_task
    from ctloop.pipelines.worker import StepOutcome, execute

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
