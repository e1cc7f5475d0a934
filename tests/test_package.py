"""The package as users meet it: a cheap import, a pinned public API, the entry points."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ctloop

ROOT = Path(__file__).resolve().parents[1]

# The public API. Changing it is a decision: update this list, the CHANGELOG and the docs.
EXPECTED_ALL = [
    "Client",
    "Conflict",
    "CtloopError",
    "DatasetVersion",
    "Experiment",
    "InvalidInput",
    "ModelVersion",
    "NotFound",
    "PipelineRun",
    "Run",
    "RunRecord",
    "active_run",
    "add_dataset",
    "end_run",
    "get_dataset",
    "load_model",
    "log_artifact",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "pipeline",
    "register_model",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]

# Never pulled in by ``import ctloop``: each costs from 50 ms to over a second.
HEAVY = ["pandas", "scipy", "sklearn", "fastapi", "sqlalchemy", "pyarrow", "numpy"]

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import ctloop
elapsed = time.perf_counter() - t0
print(json.dumps({"elapsed": elapsed, "modules": sorted(sys.modules)}))
"""


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_import_is_light_and_fast() -> None:
    proc = _run("-c", _PROBE)
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    loaded = set(probe["modules"])
    pulled = sorted(
        heavy for heavy in HEAVY if any(m == heavy or m.startswith(heavy + ".") for m in loaded)
    )
    assert pulled == [], f"import ctloop imported {pulled}; import them where they are used"
    # Typically ~20 ms; a generous bound so only a real regression (a heavy import) trips it.
    assert probe["elapsed"] < 1.0, f"import ctloop took {probe['elapsed']:.2f} s"


def test_import_does_not_touch_the_working_directory(tmp_path: Path) -> None:
    proc = _run("-c", "import ctloop, ctloop.testing, ctloop.settings", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_all_is_pinned_sorted_and_lazy() -> None:
    assert ctloop.__all__ == EXPECTED_ALL
    assert ctloop.__all__ == sorted(ctloop.__all__)
    assert set(ctloop._LAZY) == set(ctloop.__all__)
    assert set(ctloop.__all__) <= set(dir(ctloop))


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_public_name_resolves(name: str) -> None:
    value = getattr(ctloop, name)
    assert value is not None
    assert getattr(value, "__name__", name) == name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        ctloop.no_such_thing  # noqa: B018
    assert not hasattr(ctloop, "no_such_thing")


def test_python_m_ctloop_help() -> None:
    proc = _run("-m", "ctloop", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    assert "db" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_version_matches_the_installed_metadata() -> None:
    assert ctloop.__version__ == importlib.metadata.version("ctloop")
    parts = ctloop.__version__.split(".")
    assert len(parts) >= 3 and all(p.isdigit() for p in parts[:2]), ctloop.__version__


def test_py_typed_is_in_the_package() -> None:
    assert importlib.resources.files("ctloop").joinpath("py.typed").is_file()


@pytest.mark.slow
def test_wheel_ships_py_typed_migrations_and_the_version(tmp_path: Path) -> None:
    """Build the wheel as pip would and look inside: what an editable install cannot show."""
    proc = _run(
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "--wheel-dir",
        str(tmp_path),
        str(ROOT),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = tmp_path.glob("ctloop-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (metadata_name,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(metadata_name).decode()
        entry_points = zf.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    assert "ctloop/py.typed" in names
    assert "ctloop/store/migrations/env.py" in names
    assert "ctloop/store/migrations/script.py.mako" in names
    assert "ctloop/store/migrations/versions/0001_initial.py" in names
    assert f"\nVersion: {ctloop.__version__}\n" in metadata
    assert "License-Expression: Apache-2.0" in metadata or "License: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "ctloop = ctloop.cli:main" in entry_points
    assert not any(n.startswith("tests/") for n in names)
