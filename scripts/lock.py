"""Regenerate constraints.txt: resolve ``.[all,dev]`` afresh in a throwaway virtualenv.

Run it through ``make lock`` (or ``python3.11 scripts/lock.py``). It installs ctloop with
every extra into a temporary virtualenv *without* the current pins, freezes the result and
writes it to constraints.txt, leaving out ctloop itself and anything that only exists on
this machine: wheels served from a pip ``find-links`` folder and local versions (``+cpu``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# Pinned versions of everything `pip install -e '.[all,dev]'` installs, so that `make test`,
# `make demo` and CI install exactly these (pip install -c constraints.txt ...).
# Regenerate with: make lock   (scripts/lock.py; resolved with Python {python} on {platform})
# Do not edit by hand; to move one package, change its lower bound in pyproject.toml and
# re-lock. Platform-only packages (e.g. nvidia-*) are ignored where nothing requires them.
"""


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~ ;@\[]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _find_links(pip: list[str]) -> list[Path]:
    """Local folders pip is configured to take wheels from (config files and PIP_FIND_LINKS)."""
    values: list[str] = []
    out = subprocess.run([*pip, "config", "list"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith("find-links"):
            values.extend(value.strip().strip("'\"").split())
    values.extend(os.environ.get("PIP_FIND_LINKS", "").split())
    folders = []
    for value in values:
        path = unquote(urlparse(value).path) if value.startswith("file:") else value
        if path and "://" not in path:
            folders.append(Path(path).resolve())
    return folders


def _machine_specific(report: dict[str, Any], find_links: list[Path]) -> set[str]:
    """Names of packages installed from a find-links folder (not from an index)."""
    names = set()
    for item in report.get("install", []):
        url = item.get("download_info", {}).get("url", "")
        if not url.startswith("file:"):
            continue
        path = Path(unquote(urlparse(url).path)).resolve()
        if any(path.is_relative_to(folder) for folder in find_links):
            names.add(_name(item["metadata"]["name"]))
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--extras", default="all,dev")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ctloop-lock-") as tmp:
        env_dir = Path(tmp) / "venv"
        print(f"creating a fresh virtualenv in {env_dir}", flush=True)
        venv.create(env_dir, with_pip=True)
        pip = [str(env_dir / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        report_path = Path(tmp) / "report.json"
        print(f"resolving .[{args.extras}] without the current pins", flush=True)
        subprocess.run(
            [*pip, "install", "--report", str(report_path), "-e", f"{ROOT}[{args.extras}]"],
            check=True,
        )
        subprocess.run([*pip, "check"], check=True)
        frozen = subprocess.run(
            [*pip, "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        skip = {"ctloop"} | _machine_specific(json.loads(report_path.read_text()), _find_links(pip))

    pins, dropped = [], []
    for line in frozen:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if " @ " in line or "+" in line or _name(line) in skip:
            dropped.append(line)
            continue
        pins.append(line)
    pins.sort(key=_name)
    python = ".".join(map(str, sys.version_info[:2]))
    text = HEADER.format(python=python, platform=f"{platform.system()} {platform.machine()}")
    args.output.write_text(text + "\n".join(pins) + "\n")
    print(f"wrote {len(pins)} pins to {args.output}")
    if dropped:
        print("left out (ctloop itself or machine-specific): " + ", ".join(dropped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
