"""``ctloop deployments`` as a person runs it (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ctloop


def ctl(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTLOOP_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(*args: str, store: Path) -> str:
    out = ctl(*args, store=store)
    assert out.returncode == 0, out.stderr
    return out.stdout


def fails(*args: str, store: Path) -> str:
    """Run a command that must fail with one ``error:`` line and no traceback."""
    out = ctl(*args, store=store)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and out.stderr.startswith("error: ")
    assert out.stderr.strip().count("\n") == 0, out.stderr
    return out.stderr


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with model 'churn' versions 1-3, champion on 1."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "store"
    frame = pd.DataFrame({"age": [22, 35, 47, 58], "spend": [9.5, 20.0, 31.0, 48.5]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    with ctloop.Client(store=str(path)) as client:
        for _ in range(3):
            with ctloop.start_run(experiment="churn", client=client) as run:
                run.log_model(model, input_example=frame)
            client.models.register(run.id, name="churn")
        client.models.set_alias("churn", "champion", 1)
    return path


def test_create_set_traffic_show_and_history(store: Path) -> None:
    created = ok("deployments", "create", "churn-api", "--model", "churn@champion", store=store)
    assert "churn-api (revision 1): churn 1=100:champion" in created
    moved = ok(
        "deployments", "set-traffic", "churn-api", "1=90", "2=10", "--shadow", "3",
        "--sticky-key", "header:X-User-Id", "--reason", "try v2", store=store,
    )  # fmt: skip
    assert "revision 2" in moved and "1=90:champion 2=10:canary" in moved and "shadows 3" in moved
    same = ok("deployments", "set-traffic", "churn-api", "1=90", "2=10", store=store)
    assert "already serves that (revision 2)" in same
    show = ok("deployments", "show", "churn-api", store=store)
    for text in ("revision 2", "champion", "churn/1", "90%", "canary", "churn/2", "10%"):
        assert text in show
    assert "shadows 3" in show and "sticky key header:X-User-Id" in show and "try v2" in show
    shown = json.loads(ok("deployments", "show", "churn-api", "--json", store=store))
    assert shown["deployment"]["revision"] == 2
    assert shown["deployment"]["routes"][1] == {"version": 2, "weight": 10, "variant": "canary"}
    assert [e["revision"] for e in shown["events"]] == [1, 2]
    history = json.loads(ok("deployments", "history", "churn-api", "--json", store=store))
    assert [e["reason"] for e in history] == [None, "try v2"]
    assert "try v2" in ok("deployments", "history", "churn-api", store=store)


def test_set_traffic_clears_shadows_and_sticky_key(store: Path) -> None:
    ok("deployments", "create", "api", "-m", "churn/2", "--sticky-key", "field:id", store=store)
    ok("deployments", "set-traffic", "api", "--shadow", "3", store=store)
    cleared = json.loads(
        ok(
            "deployments",
            "set-traffic",
            "api",
            "--no-shadows",
            "--no-sticky-key",
            "--json",
            store=store,
        )  # fmt: skip
    )
    assert cleared["shadows"] == [] and cleared["sticky_key"] is None
    assert cleared["revision"] == 3 and cleared["routes"][0]["variant"] == "v2"


def test_list_and_delete(store: Path) -> None:
    assert "no deployments yet" in ok("deployments", "list", store=store)
    ok("deployments", "create", "b", "--model", "churn/1", "--no-log-payloads", store=store)
    ok("deployments", "create", "a", "--model", "churn", "-d", "latest", store=store)
    listed = json.loads(ok("deployments", "list", "--json", store=store))
    assert [(d["name"], d["log_payloads"]) for d in listed] == [("a", True), ("b", False)]
    table = ok("deployments", "list", store=store)
    assert "3=100:v3" in table and "1=100:v1" in table
    assert "deleted deployment b" in ok("deployments", "delete", "b", "--yes", store=store)
    assert [d["name"] for d in json.loads(ok("deployments", "list", "--json", store=store))] == [
        "a"
    ]
    refused = ctl("deployments", "delete", "a", store=store)  # no --yes, no terminal: aborted
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert len(json.loads(ok("deployments", "list", "--json", store=store))) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set-traffic", "api", "1=90", "2=5"), "add up to 95, not 100"),
        (("set-traffic", "api", "1=90", "7=10"), "model 'churn' has no version 7"),
        (("set-traffic", "api", "1=ninety"), "invalid traffic split '1=ninety'"),
        (("set-traffic", "api", "1=100", "--sticky-key", "user"), "invalid sticky key 'user'"),
        (("set-traffic", "api", "1=100", "--shadow", "1"), "both routed and shadowed"),
        (("set-traffic", "api"), "nothing to change"),
        (("set-traffic", "api", "--shadow", "2", "--no-shadows"), "not both"),
        (("set-traffic", "nope", "1=100"), "no deployment named 'nope'"),
        (("create", "api", "--model", "churn@challenger"), "has no alias 'challenger'"),
        (("create", "api", "--model", "churn@champion"), "exists already"),
        (("show", "apj"), "did you mean 'api'?"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(
    store: Path, args: tuple[str, ...], message: str
) -> None:
    ok("deployments", "create", "api", "--model", "churn@champion", store=store)
    assert message in fails("deployments", *args, store=store)
