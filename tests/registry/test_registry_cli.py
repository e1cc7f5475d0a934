"""``ctloop models …`` in a subprocess, as a user runs it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctloop._internal.environment import current_user

MakeRun = Callable[..., str]
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(store_url: str, artifacts_dir: Path, tmp_path: Path) -> Cli:
    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctloop",
                "--store",
                store_url,
                "--artifacts",
                str(artifacts_dir),
                "models",
                *args,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in proc.stdout + proc.stderr
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


def as_json(cli: Cli, *args: str) -> Any:
    return json.loads(cli(*args, "--json").stdout)


@pytest.fixture
def churn(client: Any, model_run: MakeRun) -> Any:
    """Model 'churn' with versions 1 and 2 (auc 0.8 and 0.9)."""
    client.models.register(model_run({"auc": 0.8}), name="churn", description="v1")
    client.models.register(model_run({"auc": 0.9}), name="churn", tags={"team": "growth"})
    return client


def test_list_versions_and_show(cli: Cli, churn: Any) -> None:
    (listed,) = as_json(cli, "list")
    assert (listed["name"], listed["latest_version"], listed["version_count"]) == ("churn", 2, 2)

    versions = as_json(cli, "versions", "churn")
    assert [v["version"] for v in versions] == [1, 2]
    assert [v["metrics"]["auc"] for v in versions] == [0.8, 0.9]
    assert versions[1]["tags"] == {"team": "growth"}

    shown = as_json(cli, "show", "churn/1")
    assert (shown["version"], shown["flavor"], shown["status"]) == (1, "sklearn", "READY")
    assert shown["package_digest"] == churn.models.get_version("churn/1").package_digest
    assert shown["signature"]["output"]["kind"] == "probabilities"

    text = cli("show", "churn").stdout
    assert text.startswith("churn/2  sklearn  READY")
    for expected in (
        "age",
        "integer",
        "spend",
        "float",
        "output probabilities  classes 0, 1",
        "growth",
    ):
        assert expected in text
    table = cli("versions", "churn").stdout
    assert "auc" in table and "0.9" in table
    assert "churn" in cli("list").stdout


def test_promote_rollback_and_alias_history(cli: Cli, churn: Any) -> None:
    first = cli("promote", "churn", "1", "--alias", "champion", "--reason", "baseline")
    assert first.stdout.strip() == "churn@champion: - → 1"
    moved = as_json(cli, "promote", "churn", "2", "--reason", "auc +0.1")  # default champion
    assert (moved["from_version"], moved["version"]["version"], moved["moved"]) == (1, 2, True)
    same = cli("promote", "churn", "2", "--reason", "again")
    assert same.stdout.strip() == "churn@champion already points to 2"
    assert as_json(cli, "show", "churn@champion")["version"] == 2

    back = cli("rollback", "churn", "--alias", "champion", "--reason", "canary failed")
    assert back.stdout.strip() == "rolled back churn@champion: 2 → 1"

    history = as_json(cli, "aliases", "churn")
    assert history["aliases"] == {"champion": 1}
    assert [
        (e["alias"], e["action"], e["from_version"], e["to_version"], e["reason"], e["actor"])
        for e in history["history"]
    ] == [
        ("champion", "set", None, 1, "baseline", current_user()),
        ("champion", "set", 1, 2, "auc +0.1", current_user()),
        ("champion", "rollback", 2, 1, "canary failed", current_user()),
    ]
    text = cli("aliases", "churn").stdout
    assert "churn@champion → 1" in text and "canary failed" in text and "2 → 1" in text

    failed = cli("rollback", "churn", ok=False)
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        "error: alias 'champion' of model 'churn' has no previous version to roll back to: "
        f"it was created pointing at version 1 by {current_user()}; to point it elsewhere, "
        "run: ctloop models promote churn VERSION --alias champion --reason …"
    )

    cli("delete-alias", "churn", "--alias", "champion", "--reason", "retire")
    assert as_json(cli, "aliases", "churn")["aliases"] == {}
    assert len(churn.models.alias_history("churn")) == 4


def test_lineage_as_a_tree_and_as_json(cli: Cli, churn: Any, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("age,left\n30,0\n")
    dataset = churn.datasets.add(data, "churn-data", pointer=False)
    run_id = churn.models.get_version("churn/2").run_id
    churn.runs.log_input(run_id, dataset)
    churn.runs.log_params(run_id, {"C": 1})

    lin = as_json(cli, "lineage", "churn/2")
    assert lin["version"]["version"] == 2 and lin["run"]["id"] == run_id
    assert [(i["dataset"], i["version"]) for i in lin["inputs"]] == [("churn-data", 1)]
    assert lin["code"] is None and lin["pipeline_run"] is None

    tree = cli("lineage", "churn/2").stdout
    lines = tree.splitlines()
    assert lines[0].startswith("churn/2  sklearn  package ")
    assert f"run {run_id}" in lines[1]
    assert any("churn-data@1  (training)" in line for line in lines)
    assert any("C = 1" in line for line in lines)
    assert any("code: not recorded" in line for line in lines)


def test_tag_sets_and_deletes(cli: Cli, churn: Any) -> None:
    tagged = as_json(cli, "tag", "churn/1", "stage=prod", "owner=ana")
    assert tagged["tags"] == {"owner": "ana", "stage": "prod"}
    out = cli("tag", "churn/1", "--delete", "owner").stdout
    assert out.strip() == "churn/1 tags: stage=prod"
    assert churn.models.get_version("churn/1").tags == {"stage": "prod"}
    bad = cli("tag", "churn/1", "novalue", ok=False)
    assert (bad.returncode, bad.stderr.strip()) == (
        1,
        "error: invalid tag 'novalue': write KEY=VALUE",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["show", "churn/7"],
            "error: model 'churn' has no version 7 (latest is 2); list them with: "
            "ctloop models versions churn",
        ),
        (
            ["show", "churn@champion"],
            "error: model 'churn' has no alias 'champion'; set one with: "
            "ctloop models promote churn VERSION --alias champion --reason …",
        ),
        (["versions", "chrun"], "error: no model named 'chrun'; did you mean 'churn'? "),
        (["lineage", "churn/x"], "error: invalid model reference 'churn/x': "),
        (["promote", "churn", "1", "--alias", "latest", "--reason", "x"], "error: the alias "),
    ],
)
def test_errors_are_one_line_and_exit_1(
    cli: Cli, churn: Any, args: list[str], message: str
) -> None:
    proc = cli(*args, ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(message)
    assert len(proc.stderr.strip().splitlines()) == 1


def test_promote_needs_a_reason(cli: Cli, churn: Any) -> None:
    proc = cli("promote", "churn", "1", ok=False)
    assert proc.returncode == 2
    assert "--reason" in proc.stderr
    assert churn.models.alias_history("churn") == []
