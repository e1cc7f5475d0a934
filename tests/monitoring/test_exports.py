"""``ctloop.monitoring`` exports its main names lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ctloop.monitoring as monitoring


def test_every_exported_name_resolves_to_its_module_object() -> None:
    for name in monitoring.__all__:
        value = getattr(monitoring, name)
        assert value.__module__.startswith("ctloop.monitoring."), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        monitoring.nope  # noqa: B018


def test_importing_the_package_loads_neither_scikit_learn_nor_scipy() -> None:
    code = (
        "import sys, ctloop.monitoring; "
        "print(any(m.split('.')[0] in ('sklearn', 'scipy') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
