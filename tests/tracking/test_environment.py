"""Code and environment capture: once per process and folder, never shared mutably."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ctloop._internal import environment as env


def _repo(path: Path, message: str) -> str:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(path),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        ],
        check=True,
    )
    out = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_code_version_is_per_folder_and_returned_as_a_copy(tmp_path: Path) -> None:
    a = _repo(tmp_path / "a", "one")
    b = _repo(tmp_path / "b", "two")
    first = env.code_version(tmp_path / "a")
    assert first["git_commit"] == a and first["git_dirty"] is False
    first["git_commit"] = "tampered"
    assert env.code_version(tmp_path / "a")["git_commit"] == a
    assert env.code_version(tmp_path / "b")["git_commit"] == b
    assert env.code_version(tmp_path) == {}  # not a repository


def test_environment_is_returned_as_a_copy() -> None:
    one = env.environment()
    one["packages"]["numpy"] = "0"
    assert env.environment()["packages"]["numpy"] != "0"
