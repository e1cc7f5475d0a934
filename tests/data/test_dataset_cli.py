"""``ctloop data …`` end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from ctloop.cli.data import app


def _ctloop(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    proc = subprocess.run(
        [sys.executable, "-m", "ctloop", "--store", str(cwd / "store"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def _json(cwd: Path, *args: str) -> Any:
    return json.loads(_ctloop(cwd, *args, "--json").stdout)


def test_add_list_show_get_diff_with_json(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    pd.DataFrame({"age": [20, 30, 40], "city": ["a", "b", "a"]}).to_csv(data, index=False)
    first = _json(tmp_path, "data", "add", "train.csv", "--name", "churn", "-d", "churn data")
    assert (first["version"], first["unchanged"], first["row_count"]) == (1, False, 3)
    assert first["pointer"] == str(tmp_path / "train.csv.ctloop.yaml")
    assert Path(first["pointer"]).is_file()

    again = _ctloop(tmp_path, "data", "add", "train.csv", "--name", "churn")
    assert again.stdout.startswith("unchanged churn@1")

    pd.DataFrame({"age": [20, 30, 70]}).to_csv(data, index=False)
    second = _json(tmp_path, "data", "add", "train.csv", "--name", "churn", "--no-pointer")
    assert (second["version"], second["unchanged"], second["pointer"]) == (2, False, None)

    (listed,) = _json(tmp_path, "data", "list")
    assert (listed["name"], listed["latest_version"], listed["version_count"]) == ("churn", 2, 2)
    assert listed["description"] == "churn data"

    shown = _json(tmp_path, "data", "show", "churn")
    assert shown["version"]["version"] == 2
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    one = _json(tmp_path, "data", "show", "churn@1")
    assert one["version"]["profile"]["columns"]["age"]["mean"] == 30.0
    assert "versions" not in one
    table = _ctloop(tmp_path, "data", "show", "churn@1").stdout
    assert "age" in table and "city" in table and "a (2)" in table

    diff = _json(tmp_path, "data", "diff", "churn@1", "churn@2")
    assert [c["name"] for c in diff["removed_columns"]] == ["city"]
    (age,) = diff["column_stats"]
    assert age["changes"]["mean"] == {"before": 30.0, "after": 40.0}
    assert diff["identical"] is False and diff["schema_changed"] is True
    text = _ctloop(tmp_path, "data", "diff", "churn@1", "churn@2").stdout
    assert "- column city" in text and "mean 30 → 40" in text

    got = _ctloop(tmp_path, "data", "get", "churn@1", "-o", "restored.csv")
    assert "wrote churn@1" in got.stdout
    restored = pd.read_csv(tmp_path / "restored.csv")
    assert restored["city"].tolist() == ["a", "b", "a"]


def test_add_of_a_missing_file_is_one_error_line_and_writes_nothing(tmp_path: Path) -> None:
    proc = _ctloop(tmp_path, "data", "add", "nope.csv", "--name", "churn", ok=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope.csv" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unknown_version_and_bad_ref_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("x")
    _ctloop(tmp_path, "data", "add", "d.txt", "--name", "d")
    for ref, expected in (
        ("d@7", "error: dataset 'd' has no version 7 (latest is 1)"),
        ("d@x", "error: invalid dataset reference 'd@x'"),
    ):
        proc = _ctloop(tmp_path, "data", "show", ref, ok=False)
        assert proc.returncode == 1 and proc.stderr.startswith(expected)
        assert "Traceback" not in proc.stderr


def test_every_data_command_and_option_has_help() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(commands) == {"add", "list", "show", "get", "diff", "suite", "validate"}
    for name, command in commands.items():
        assert command.help, name
        for param in command.params:
            if param.name != "ctx":
                assert getattr(param, "help", None), f"{name} {param.name}"
