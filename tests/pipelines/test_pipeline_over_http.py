"""A pipeline driven through a ctloop server: records and artifacts go over HTTP only."""

from __future__ import annotations

from pathlib import Path

import pipeline_steps as ps
import pytest

from ctloop import Client
from ctloop.pipelines import PipelineStatus
from ctloop.testing import running_server


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_a_pipeline_runs_against_a_server(tmp_path: Path, executor: str) -> None:
    served = tmp_path / "served"
    with running_server(str(served)) as url:
        client = Client(store=url)
        try:
            first = ps.numbers.run(executor=executor, client=client, n=21)
            again = ps.numbers.run(executor=executor, client=client, n=21)
            assert first.status is PipelineStatus.COMPLETED
            assert again.cache_hits == len(again.steps)  # the cache works over HTTP too
            assert again.output("summarise")["rows"] == 21
            assert client.runs.get(first.run_id).metrics["rows"] == 21
        finally:
            client.close()
    # everything landed in the served store; next to the client only the upload hash cache
    with Client(store=str(served)) as local:
        stored = local.pipelines.get(first.id)
        assert [s.status.value for s in stored.steps] == ["COMPLETED"] * 6
        ref = stored.step("scale").outputs["output"]
        assert not local.objects.missing([(ref.digest, ref.kind)])
    home = tmp_path / ".ctloop"
    assert not (home / "ctloop.db").exists() and not (home / "artifacts").exists()
