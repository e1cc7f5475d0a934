"""A ``ctloop`` command that serves HTTP, run as a child process for as long as a block runs."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator

__all__ = ["ctloop_child_server", "free_port"]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def ctloop_child_server(
    args: Callable[[int], list[str]], health: str, *, what: str, timeout: float = 60.0
) -> Iterator[str]:
    """Run ``python -m ctloop <args(port)>`` until ``health`` answers 200; yield its URL.

    The child gets this process's environment without ``CTLOOP_*`` (its flags say where
    the store is), and is stopped with SIGTERM (then SIGKILL after 30 s) when the block
    ends. If it exits early or is not healthy within ``timeout`` seconds, RuntimeError
    quotes the end of its stderr.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctloop", *args(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"{what} exited early: {err.strip()[-500:]}")
            with (
                contextlib.suppress(OSError),  # not listening yet, or not ready (503)
                urllib.request.urlopen(url + health, timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
