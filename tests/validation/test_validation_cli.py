"""``ctloop data suite`` and ``ctloop data validate``, in a subprocess as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml

from ctloop import Client
from ctloop.cli.data import app
from ctloop.datasets import churn


def _ctloop(cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    proc = subprocess.run(
        [sys.executable, "-m", "ctloop", "--store", str(cwd / "store"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    """churn@1 (a clean reference) and churn@2 (the next rows, with two corruptions)."""
    churn.generate(600, seed=2).to_csv(tmp_path / "train.csv", index=False)
    new = churn.generate(600, seed=2, offset=600).reset_index(drop=True)
    new["plan"] = new["plan"].astype(str)
    new.loc[5, "plan"] = "platinum"
    new.loc[9, "age"] = -3
    new.to_csv(tmp_path / "new.csv", index=False)
    with Client(store=str(tmp_path / "store")) as client:
        client.datasets.add(tmp_path / "train.csv", "churn", pointer=False)
        client.datasets.add(tmp_path / "new.csv", "churn", pointer=False)
    return tmp_path


def test_infer_write_attach_and_validate(versions: Path) -> None:
    tmp = versions
    printed = _ctloop(tmp, "data", "suite", "churn@1").stdout
    suite = yaml.safe_load(printed)
    assert suite["inferred_from"] == "churn@1" and suite["row_count"]["severity"] == "warn"
    assert suite["columns"]["plan"]["allowed_values"] == ["basic", "premium", "standard"]

    wrote = _ctloop(tmp, "data", "suite", "churn@1", "-o", "suite.yaml", "--attach").stdout
    assert wrote.splitlines()[0].startswith("wrote suite.yaml: ")
    assert "inferred from churn@1" in wrote
    assert "attached as suite 'default' of churn@1" in wrote
    assert yaml.safe_load((tmp / "suite.yaml").read_text()) == suite

    clean = _ctloop(tmp, "data", "validate", "churn@1")  # the attached suite
    assert "validation of churn@1 against suite 'churn' passed" in clean.stdout

    failed = _ctloop(tmp, "data", "validate", "churn@2", "--suite", "suite.yaml", code=1)
    lines = failed.stdout.splitlines()
    assert lines[1].split()[:2] == ["FAIL", "age.range"] and "row 9: -3" in lines[1]
    assert any(line.split()[:2] == ["FAIL", "plan.allowed_values"] for line in lines)
    assert any("'platinum'" in line for line in lines)
    assert "validation of churn@2 against suite 'churn' FAILED" in lines[-1]

    report = json.loads(
        _ctloop(tmp, "data", "validate", "churn@2", "-s", "suite.yaml", "--json", code=1).stdout
    )
    assert report["success"] is False and report["dataset"] == "churn@2"
    failing = {r["check"]: r for r in report["results"] if r["status"] == "failed"}
    assert set(failing) == {"age.range", "plan.allowed_values"}
    assert failing["age.range"]["failing_rows"] == [{"row": 9, "value": -3}]
    assert failing["plan.allowed_values"]["observed"]["unexpected"] == ["platinum"]

    # a failure of severity warn is shown but the exit code stays 0
    (tmp / "warn.yaml").write_text(
        "columns:\n  age: {range: {min: 0, severity: warn}}\n  plan: {dtype: str}\n"
    )
    warned = _ctloop(tmp, "data", "validate", "churn@2", "--suite", "warn.yaml")
    assert warned.stdout.splitlines()[1].split()[:3] == ["warn", "age.range", "warn"]
    assert "passed: 1 of 2 checks passed, 1 warning(s)" in warned.stdout


def test_bad_input_is_one_error_line(versions: Path) -> None:
    tmp = versions
    cases = [
        (("data", "validate", "churn@2"), "has no validation suite named 'default'"),
        (("data", "validate", "churn@2", "--suite", "missing.yaml"), "no such suite file"),
        (("data", "validate", "nope@1", "--suite", "bad.yaml"), "bad.yaml line 3: unknown check"),
        (("data", "suite", "nope@1"), "no dataset named 'nope'"),
        (("data", "suite", "churn@1", "--warn", "rows"), "unknown check 'rows'"),
    ]
    (tmp / "bad.yaml").write_text("columns:\n  age:\n    between: {min: 0}\n")
    for args, expected in cases:
        proc = _ctloop(tmp, *args, code=1)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
        assert expected in lines[0], lines[0]
    missing = _ctloop(tmp, "data", "validate", "churn@2", code=1).stderr
    assert "ctloop data suite churn@2 --attach" in missing and "--suite FILE" in missing


def test_the_new_commands_and_their_options_have_help() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name in ("suite", "validate"):
        command = commands[name]
        assert command.help, name
        for param in command.params:
            if param.name != "ctx":
                assert getattr(param, "help", None), f"{name} {param.name}"


def test_a_parquet_version_validates_with_its_own_dtypes(tmp_path: Path) -> None:
    churn.generate(300, seed=4).to_parquet(tmp_path / "train.parquet")
    with Client(store=str(tmp_path / "store")) as client:
        client.datasets.add(tmp_path / "train.parquet", "pq", pointer=False)
    _ctloop(tmp_path, "data", "suite", "pq", "--attach")
    out = _ctloop(tmp_path, "data", "validate", "pq", "--json").stdout
    report = json.loads(out)
    assert report["success"] is True
    dtypes = {r["column"]: r["observed"] for r in report["results"] if r["kind"] == "dtype"}
    assert dtypes["plan"] == "category" and dtypes["event_time"].startswith("datetime64")
    assert pd.read_parquet(tmp_path / "train.parquet").shape[0] == report["row_count"]
