"""What a run records about where it ran: code version, Python, platform, packages, user."""

from __future__ import annotations

import copy
import functools
import getpass
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

KEY_PACKAGES = (
    "ctloop",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "xgboost",
    "lightgbm",
    "torch",
)


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def code_version(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The git commit, dirty flag and sha256 of the working-tree diff, if in a git repo.

    Returns an empty dict outside a repository or when git is not installed. Captured once
    per process and folder: the code a process runs is the code it loaded, and five git
    calls per run would dominate the cost of starting one.
    """
    return copy.deepcopy(_code_version_of(str(Path(cwd or os.getcwd()).resolve())))


@functools.lru_cache(maxsize=64)
def _code_version_of(where: str) -> dict[str, Any]:
    return _capture_code_version(Path(where))


def _capture_code_version(where: Path) -> dict[str, Any]:
    """The git commit, dirty flag and sha256 of the working-tree diff of ``where``."""
    commit = _git(["rev-parse", "HEAD"], where)
    if commit is None:
        return {}
    info: dict[str, Any] = {"git_commit": commit.decode().strip()}
    root = _git(["rev-parse", "--show-toplevel"], where)
    if root:
        info["git_root"] = root.decode().strip()
    diff = _git(["diff", "HEAD", "--binary"], where) or b""
    untracked = _git(["ls-files", "--others", "--exclude-standard"], where) or b""
    info["git_dirty"] = bool(diff.strip() or untracked.strip())
    info["git_diff_sha256"] = hashlib.sha256(diff).hexdigest() if diff else None
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], where)
    if branch:
        info["git_branch"] = branch.decode().strip()
    return info


def run_source(capture_code: bool = True) -> dict[str, Any]:
    """What a run records as its source: the code version (when ``capture_code``) and the
    entry point (the script's file name)."""
    source = code_version() if capture_code else {}
    source["entry_point"] = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else None
    return source


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that decide what a model does."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def current_user() -> str:
    """The login name of whoever runs this process ('unknown' when it has none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def environment() -> dict[str, Any]:
    """Python, platform and package versions of this process (captured once per process)."""
    return copy.deepcopy(_environment())


@functools.lru_cache(maxsize=1)
def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "executable": sys.executable,
        "packages": package_versions(),
    }
