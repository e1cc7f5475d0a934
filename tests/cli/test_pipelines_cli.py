"""``ctloop pipeline runs|show|run`` as a person runs them (subprocess).

The records ``runs`` and ``show`` read are written here through ``client.pipelines``, as
the pipeline runner writes them; ``run`` runs a real pipeline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import ctloop
from ctloop._internal.ids import new_id, now_ms
from ctloop.client.http.pipelines import run_to_wire
from ctloop.errors import InvalidInput
from ctloop.pipelines.entities import ArtifactRef

TRACEBACK = "\n".join(
    [
        "Traceback (most recent call last):",
        '  File "flows.py", line 3, in train',
        "    fit(df)",
        '  File "model.py", line 9, in fit',
        "    check(depth)",
        '  File "model.py", line 20, in check',
        "    raise ValueError(msg)",
        "ValueError: depth [red]9[/red] is too deep",
    ]
)


def ctl(*args: str, store: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The command failed with one ``error: …`` line and no traceback; returns the line."""
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def record(client: Any, pipeline: str, start: int, ends: str | None = None) -> dict[str, str]:
    """A pipeline run of load → (split, validate) → train; returns the ids by step name."""
    graph = [
        {"name": "load", "step": "flows:load", "upstream": []},
        {"name": "split", "step": "flows:split", "upstream": ["load"]},
        {"name": "validate", "step": "flows:validate", "upstream": ["load"]},
        {"name": "train", "step": "flows:train", "upstream": ["split", "validate"]},
    ]
    ids = {"run": new_id(), **{n["name"]: new_id() for n in graph}}
    client.pipelines.create_run(
        {
            "id": ids["run"],
            "pipeline": pipeline,
            "executor": "local",
            "params": {"depth": 9, "ref": "churn@latest"},
            "graph": graph,
            "start_time": start,
            "user": "alice",
        },
        [{"id": ids[n["name"]], **n} for n in graph],
    )
    if ends is None:
        return ids
    data = client.objects.put_bytes(b'{"rows": 100}')
    ref = ArtifactRef(data.digest, "file", "json/1", "dict", data.size)
    ids["source"] = new_id()
    update = client.pipelines.update_step
    update(
        ids["load"],
        status="CACHED",
        cache_hit=True,
        cached_from=ids["source"],
        outputs={"out": ref},
        start_time=start,
        end_time=start + 5,
    )
    update(ids["split"], status="COMPLETED", attempts=1, outputs={"train": ref, "test": ref})
    update(ids["validate"], status="COMPLETED", attempts=1, start_time=start, end_time=start + 250)
    if ends == "FAILED":
        update(ids["train"], status="FAILED", attempts=2, error=TRACEBACK)
        client.pipelines.end_run(ids["run"], "FAILED", error="step train failed\nsee its logs")
    else:
        update(ids["train"], status="COMPLETED", attempts=1, outputs={"out": ref})
        client.pipelines.end_run(ids["run"], "COMPLETED")
    return ids


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def runs(store: Path) -> dict[str, dict[str, str]]:
    """A failed and a completed run of 'churn' and a running one of 'fraud'."""
    t = now_ms()
    with ctloop.Client(store=str(store)) as client:
        return {
            "failed": record(client, "churn", t - 3000, ends="FAILED"),
            "completed": record(client, "churn", t - 2000, ends="COMPLETED"),
            "running": record(client, "fraud", t - 1000),
        }


def test_runs_lists_newest_first_and_filters(store: Path, runs: dict[str, dict[str, str]]) -> None:
    out = ctl("pipeline", "runs", "--json", store=store)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [r["id"] for r in listed] == [runs[k]["run"] for k in ("running", "completed", "failed")]
    assert [s["name"] for s in listed[0]["steps"]] == ["load", "split", "validate", "train"]
    assert "client" not in listed[0]

    def ids(*args: str) -> list[str]:
        out = ctl("pipeline", "runs", "--json", *args, store=store)
        assert out.returncode == 0, out.stderr
        return [r["id"] for r in json.loads(out.stdout)]

    assert ids("--pipeline", "churn") == [runs["completed"]["run"], runs["failed"]["run"]]
    assert ids("--status", "failed") == [runs["failed"]["run"]]
    assert ids("--status", "RUNNING", "--pipeline", "fraud") == [runs["running"]["run"]]
    assert ids("--limit", "1") == [runs["running"]["run"]]
    assert ids("--pipeline", "nothing") == []


def test_runs_table(store: Path, runs: dict[str, dict[str, str]]) -> None:
    out = ctl("pipeline", "runs", store=store)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["id", "pipeline", "status", "executor", "steps", "started", "took"]
    failed = next(line for line in lines if line.split()[0] == runs["failed"]["run"][:12])
    assert "churn" in failed and "FAILED" in failed and "4 (1 cached)" in failed
    assert runs["failed"]["run"] not in out.stdout  # ids are shortened
    running = next(line for line in lines if line.split()[0] == runs["running"]["run"][:12])
    assert "RUNNING" in running and running.rstrip().endswith("-")  # not ended: no duration
    empty = ctl("pipeline", "runs", "--pipeline", "nothing", store=store)
    assert "no pipeline runs" in empty.stdout


def test_show_json_is_the_run(store: Path, runs: dict[str, dict[str, str]]) -> None:
    out = ctl("pipeline", "show", runs["failed"]["run"][:8], "--json", store=store)
    assert out.returncode == 0, out.stderr
    with ctloop.Client(store=str(store)) as client:
        expected = run_to_wire(client.pipelines.get(runs["failed"]["run"]))
    assert json.loads(out.stdout) == expected
    assert expected["steps"][0]["cached_from"] == runs["failed"]["source"]


def test_show_draws_the_steps(store: Path, runs: dict[str, dict[str, str]]) -> None:
    ids = runs["failed"]
    out = ctl("pipeline", "show", ids["run"], store=store)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    header, steps = text.split("steps (4, 1 cached)")
    assert f"churn  {ids['run']}  FAILED" in header
    assert "executor local  user alice  tracking run -" in header
    assert 'params depth=9  ref="churn@latest"' in header
    assert "error: step train failed" in header and "see its logs" not in header
    lines = steps.splitlines()

    def line_of(start: str) -> str:
        return next(line for line in lines if start in line)

    assert f"load  CACHED  cached from {ids['source'][:12]}" in line_of("load ")
    assert "split ← load  COMPLETED  1 attempt" in line_of("split ←")
    assert "validate ← load  COMPLETED  1 attempt  250 ms" in line_of("validate ←")
    assert "train ← split, validate  FAILED  2 attempts" in line_of("train ←")
    assert "train  json/1" in steps and "test  json/1" in steps  # outputs of split
    # plan order
    assert steps.index("load ") < steps.index("split ←") < steps.index("validate ←")
    # the last lines of the error, as written (no markup), not the whole traceback
    assert "ValueError: depth [red]9[/red] is too deep" in steps
    assert "Traceback (most recent call last)" not in steps


def test_show_of_a_completed_run_has_no_errors(
    store: Path, runs: dict[str, dict[str, str]]
) -> None:
    out = ctl("pipeline", "show", runs["completed"]["run"], store=store)
    assert out.returncode == 0, out.stderr
    assert "COMPLETED" in out.stdout and "error" not in out.stdout.lower()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pipeline", "show", "0123456789abcdef"), "no pipeline run '0123456789abcdef'"),
        (("pipeline", "show", "ab"), "list them with: ctloop pipeline runs"),
        (("pipeline", "runs", "--status", "sleeping"), "invalid pipeline status 'sleeping'"),
        (("pipeline", "runs", "--limit", "0"), "invalid limit 0"),
    ],
)
def test_bad_input_is_one_line_without_a_traceback(
    store: Path, runs: dict[str, dict[str, str]], args: tuple[str, ...], message: str
) -> None:
    assert message in one_line_error(ctl(*args, store=store))


def test_every_pipeline_command_has_help(store: Path) -> None:
    for command in ("runs", "show", "run"):
        out = ctl("pipeline", command, "--help", store=store)
        assert out.returncode == 0 and "Usage" in out.stdout, out.stderr
    assert "--executor" in ctl("pipeline", "run", "--help", store=store).stdout


# --- ctloop pipeline run ---------------------------------------------------------------------

FLOWS = """
from __future__ import annotations

from ctloop.pipelines import pipeline, step


@step
def make(n: int) -> list:
    return list(range(n))


@step
def total(xs: list, scale: float) -> float:
    if scale < 0:
        raise ValueError("scale must not be negative")
    return sum(xs) * scale


@pipeline
def numbers(n: int = 3, scale: float = 1.0, label: str = "x", opts: dict | None = None):
    total(make(n), scale)
"""


def test_run_runs_a_pipeline_from_the_current_folder(tmp_path: Path, store: Path) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    args = ("pipeline", "run", "flows:numbers", "-x", "inline")
    out = ctl(
        *args, "-p", "n=4", "-p", "scale=0.5", "-p", "label=7", "--json", store=store, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["status"] == "COMPLETED" and first["executor"] == "inline"
    assert first["params"]["n"] == 4 and first["params"]["scale"] == 0.5
    assert first["params"]["label"] == "7"  # str-annotated: kept as text
    with ctloop.Client(store=str(store)) as client:
        assert client.pipelines.get(first["id"]).output("total") == 3.0

    again = ctl(
        *args, "-p", "n=4", "-p", "scale=0.5", "-p", "opts={a: 1}", store=store, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "cached from" in again.stdout  # make(4) is reused

    failed = ctl(*args, "-p", "scale=-1", store=store, cwd=tmp_path)
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "scale must not be negative" in failed.stdout

    unknown = one_line_error(ctl(*args, "-p", "depth=3", store=store, cwd=tmp_path))
    assert "has no param 'depth'" in unknown and "n, scale, label, opts" in unknown
    typed = one_line_error(ctl(*args, "-p", "n=four", store=store, cwd=tmp_path))
    assert "param 'n' takes an integer, not 'four'" in typed
    missing = one_line_error(ctl("pipeline", "run", "nowhere:numbers", store=store, cwd=tmp_path))
    assert "nowhere" in missing


def test_params_are_typed_by_the_pipeline_signature() -> None:
    from ctloop.pipelines import pipeline
    from ctloop.pipelines.params import params_from_text as parse_params

    def flow(
        n: int,
        rate: float = 0.1,
        fast: bool = False,
        limit: int | None = None,
        name="churn",  # typed by its default
        spec: dict | None = None,
        anything=None,  # neither annotated nor typed by its default: read as YAML
    ) -> None: ...

    pipe = pipeline(flow)
    given = [
        "n=3",
        "rate=2.5",
        "fast=Yes",
        "limit=7",
        "name=42",
        "spec={depth: 3, trees: [1, 2]}",
        "anything=[1, two]",
    ]
    assert parse_params(pipe, given) == {
        "n": 3,
        "rate": 2.5,
        "fast": True,
        "limit": 7,
        "name": "42",
        "spec": {"depth": 3, "trees": [1, 2]},
        "anything": [1, "two"],
    }
    assert parse_params(pipe, ["fast=off", "name=a=b"]) == {"fast": False, "name": "a=b"}
    for bad, message in [
        (["fast=maybe"], "param 'fast' takes true or false, not 'maybe'"),
        (["rate=fast"], "param 'rate' takes a number, not 'fast'"),
        (["n=1", "n=2"], "param 'n' is given twice"),
        (["n"], "invalid param 'n': use -p NAME=VALUE"),
        (["spec={a: [1"], "param 'spec': '{a: [1' is not a YAML value"),
        (["depth=3"], "has no param 'depth' (its params: n, rate, fast, limit, name, spec"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            parse_params(pipe, bad)


def test_trace_walks_an_artifact_back_to_the_first_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "pipelines"))
    import pipeline_steps as ps

    store = tmp_path / "store"
    with ctloop.Client(store=str(store)) as client:
        run = ps.numbers.run(executor="inline", client=client, n=9, echo=False)
    leaf = run.step("to_array_2").outputs["output"].digest
    out = ctl("pipeline", "trace", leaf[:12], store=store)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{leaf[:12]}  ndarray/1  ← to_array_2")
    # to_array_2 ← split.high ← scale ← make_frame (with its params)
    assert re.search(r"df: \w{12}  dataframe/1  ← split\.high", out.stdout)
    assert re.search(r"df: \w{12}  dataframe/1  ← scale  factor=2\.0", out.stdout)
    assert re.search(r"df: \w{12}  dataframe/1  ← make_frame  n=9  seed=0", out.stdout)
    as_json = json.loads(ctl("pipeline", "trace", leaf, "--json", store=store).stdout)
    assert as_json["producer"]["pipeline_run_id"] == run.id
    assert as_json["inputs"]["df"]["producer"]["name"] == "split"
    bad = ctl("pipeline", "trace", "xyz", store=store)
    assert bad.returncode != 0 and one_line_error(bad).startswith("error: 'xyz' is not an")
