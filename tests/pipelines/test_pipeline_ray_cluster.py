"""The ray executor joins a running cluster given by address (``ray start --head``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCRIPT = """
import sys
import pipeline_steps as ps
from ctloop import Client

client = Client(store=sys.argv[2])
run = ps.numbers.run(executor="ray", ray_address=sys.argv[1], client=client, echo=False, n=25)
import ray
print(run.status.value, run.output("summarise")["rows"], ray.get_runtime_context().gcs_address)
"""


@pytest.mark.slow
def test_a_pipeline_runs_on_a_ray_cluster_given_by_address(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    temp = Path(f"/tmp/ray-{uuid.uuid4().hex[:6]}")  # Ray's socket paths must stay short
    # Ray 2.5x turns on token auth for new clusters; a cluster of this test needs none
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=str(HERE))
    head = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            "--block",
            "--port=0",
            "--num-cpus=1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        marker = temp / "ray_current_cluster"
        deadline = time.monotonic() + 120
        while not (marker.exists() and marker.read_text().strip()):
            assert head.poll() is None, "ray start exited"
            assert time.monotonic() < deadline, "the Ray head did not start within 120 s"
            time.sleep(0.5)
        address = marker.read_text().strip()
        script = tmp_path / "on_cluster.py"
        script.write_text(textwrap.dedent(SCRIPT))
        out = subprocess.run(
            [sys.executable, str(script), address, str(tmp_path / "store")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        status, rows, joined = out.stdout.split()[-3:]
        assert (status, rows) == ("COMPLETED", "25")
        assert joined == address  # it joined that cluster, not a new local one
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        subprocess.run(["rm", "-rf", str(temp)], check=False)
