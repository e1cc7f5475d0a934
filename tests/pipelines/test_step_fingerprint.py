"""Cache keys: a step's code digest follows its source and the project code it reaches.

Each test writes a small project into ``tmp_path`` as real modules, imports it, edits a
file and imports it again as a new process would (same module names, fresh import), then
compares ``code_digest`` of the step's function, as the runner computes it.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import linecache
import os
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ctloop.pipelines import fingerprint
from ctloop.pipelines.fingerprint import cache_key, code_digest, is_project_local

_mtimes = itertools.count(int(time.time()) + 10)


class Project:
    """A folder of modules on ``sys.path`` whose names all start with a unique prefix.

    In sources, ``PFX_`` stands for that prefix (``import PFX_helpers``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"fp{uuid.uuid4().hex[:8]}_"

    def write(self, relpath: str, source: str) -> Path:
        path = self.root / relpath.replace("PFX_", self.prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).replace("PFX_", self.prefix))
        # A distinct mtime, so linecache (and the import system) see every edit even when
        # two versions of a file are written within the file system's clock tick.
        stamp = next(_mtimes)
        os.utime(path, (stamp, stamp))
        return path

    def load(self, name: str) -> Any:
        """Import ``name`` afresh, with every module of this project, as a new process would."""
        for mod in [m for m in sys.modules if m.startswith(self.prefix)]:
            del sys.modules[mod]
        importlib.invalidate_caches()
        linecache.checkcache()  # what the runner does before it computes digests
        return importlib.import_module(name.replace("PFX_", self.prefix))

    def digest(self, module: str, attr: str = "s") -> str:
        """``code_digest`` of the step (or function) ``module.attr``, freshly imported."""
        obj = getattr(self.load(module), attr)
        fn = getattr(obj, "fn", obj)  # a Step's function, as the runner does
        # the source inspect reads is the file as written now (no stale cache)
        assert inspect.getsource(fn) in Path(inspect.getfile(fn)).read_text()
        return code_digest(fn)

    def cleanup(self) -> None:
        for mod in [m for m in sys.modules if m.startswith(self.prefix)]:
            del sys.modules[mod]


@pytest.fixture
def fp_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no stale .pyc between versions
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    project = Project(root)
    yield project
    project.cleanup()


def edited_digests(
    project: Project, before: str, after: str, module: str = "PFX_steps"
) -> tuple[str, str]:
    project.write(f"{module}.py", before)
    first = project.digest(module)
    project.write(f"{module}.py", after)
    return first, project.digest(module)


# --- the step's own source ----------------------------------------------------------------

STEP = """
from ctloop import step

@step
def s(x, factor=2):
    return x * factor
"""


def test_digest_is_stable_across_imports(fp_project: Project) -> None:
    fp_project.write("PFX_steps.py", STEP)
    assert fp_project.digest("PFX_steps") == fp_project.digest("PFX_steps")


def test_body_change_changes_the_digest(fp_project: Project) -> None:
    before, after = edited_digests(fp_project, STEP, STEP.replace("x * factor", "x * factor + 1"))
    assert before != after


def test_signature_default_change_changes_the_digest(fp_project: Project) -> None:
    before, after = edited_digests(fp_project, STEP, STEP.replace("factor=2", "factor=3"))
    assert before != after


def test_comment_only_change_keeps_the_digest(fp_project: Project) -> None:
    commented = """
    from ctloop import step

    # scaling, see the design note
    @step
    def s(x, factor=2):  # factor from the notebook
        # multiply
        return x * factor  # done
    """
    before, after = edited_digests(fp_project, STEP, commented)
    assert before == after


def test_formatting_only_change_keeps_the_digest(fp_project: Project) -> None:
    reformatted = """
    from ctloop import step



    @step
    def s(
        x,
        factor = 2,
    ):
        return (x  *  factor)
    """
    before, after = edited_digests(fp_project, STEP, reformatted)
    assert before == after


def test_moving_the_step_down_the_file_keeps_the_digest(fp_project: Project) -> None:
    moved = STEP.replace("@step", "\n\n\ndef unrelated():\n    return 1\n\n\n@step")
    before, after = edited_digests(fp_project, STEP, moved)
    assert before == after


@pytest.mark.parametrize(
    "decorator",
    ["@step(retries=3, retry_delay=0.5)", "@step(cache=False, timeout=10, name='renamed')"],
)
def test_decorator_argument_change_keeps_the_digest(fp_project: Project, decorator: str) -> None:
    before, after = edited_digests(fp_project, STEP, STEP.replace("@step", decorator))
    assert before == after


# --- project-local code the step reaches --------------------------------------------------

HELPER_CALLER = """
from ctloop import step
from PFX_helpers import clean

@step
def s(x):
    return clean(x)
"""


def test_direct_helper_change_changes_the_digest(fp_project: Project) -> None:
    fp_project.write("PFX_steps.py", HELPER_CALLER)
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x + 1\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x + 2\n")
    assert fp_project.digest("PFX_steps") != before


def test_helper_comment_or_unrelated_function_keeps_the_digest(fp_project: Project) -> None:
    fp_project.write("PFX_steps.py", HELPER_CALLER)
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x + 1\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write(
        "PFX_helpers.py",
        "# helpers\n\ndef unused():\n    return 0\n\n\ndef clean(x):  # why: a comment\n"
        "    return x + 1\n",
    )
    assert fp_project.digest("PFX_steps") == before


def test_helper_in_the_same_module_changes_the_digest(fp_project: Project) -> None:
    before_src = """
    from ctloop import step

    def clean(x):
        return x + 1

    @step
    def s(x):
        return clean(x)
    """
    before, after = edited_digests(fp_project, before_src, before_src.replace("x + 1", "x - 1"))
    assert before != after


def test_module_attribute_helper_change_changes_the_digest(fp_project: Project) -> None:
    fp_project.write(
        "PFX_steps.py",
        """
        import PFX_helpers as helpers
        from ctloop import step

        @step
        def s(x):
            return helpers.clean(x)
        """,
    )
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x + 1\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x * 2\n")
    assert fp_project.digest("PFX_steps") != before


def test_submodule_imported_from_a_package_changes_the_digest(fp_project: Project) -> None:
    fp_project.write("PFX_pkg/__init__.py", "")
    fp_project.write(
        "PFX_steps.py",
        """
        from PFX_pkg import features
        from ctloop import step

        @step
        def s(x):
            return features.clean(x)
        """,
    )
    fp_project.write("PFX_pkg/features.py", "def clean(x):\n    return x + 1\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_pkg/features.py", "def clean(x):\n    return x * 2\n")
    assert fp_project.digest("PFX_steps") != before


def test_transitive_helper_change_changes_the_digest(fp_project: Project) -> None:
    fp_project.write("PFX_steps.py", HELPER_CALLER)
    fp_project.write(
        "PFX_helpers.py",
        """
        from PFX_deep import strip

        def clean(x):
            return strip(x) + 1
        """,
    )
    fp_project.write("PFX_deep.py", "def strip(x):\n    return abs(x)\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_deep.py", "def strip(x):\n    return -abs(x)\n")
    assert fp_project.digest("PFX_steps") != before


def test_closure_variable_function_change_changes_the_digest(fp_project: Project) -> None:
    source = """
    from ctloop import step

    def transform(x):
        return x + 1

    def make_step(fn):
        def s(x):
            return fn(x)
        return step(s)

    s = make_step(transform)
    """
    before, after = edited_digests(fp_project, source, source.replace("x + 1", "x + 100"))
    assert before != after


def test_project_class_method_change_changes_the_digest(fp_project: Project) -> None:
    fp_project.write(
        "PFX_steps.py",
        """
        from ctloop import step
        from PFX_model import Scaler

        @step
        def s(x):
            return Scaler(2).apply(x)
        """,
    )
    model = """
    class Base:
        def offset(self):
            return 0

    class Scaler(Base):
        def __init__(self, k):
            self.k = k

        def apply(self, x):
            return x * self.k + self.offset()
    """
    fp_project.write("PFX_model.py", model)
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_model.py", model.replace("x * self.k", "x / self.k"))
    after_method = fp_project.digest("PFX_steps")
    fp_project.write("PFX_model.py", model.replace("return 0", "return 1"))
    after_base = fp_project.digest("PFX_steps")
    assert len({before, after_method, after_base}) == 3


def test_helper_called_from_a_class_method_changes_the_digest(fp_project: Project) -> None:
    source = """
    from ctloop import step

    def rescale(x):
        return x * 2

    class Scaler:
        @staticmethod
        def apply(x):
            return rescale(x)

    @step
    def s(x):
        return Scaler.apply(x)
    """
    before, after = edited_digests(fp_project, source, source.replace("x * 2", "x * 3"))
    assert before != after


def test_other_step_called_as_a_function_changes_the_digest(fp_project: Project) -> None:
    source = """
    from ctloop import step

    @step
    def inner(x):
        return x + 1

    @step
    def s(x):
        return inner.fn(x) + inner(x)
    """
    before, after = edited_digests(fp_project, source, source.replace("x + 1", "x + 2"))
    assert before != after


def test_recursive_helpers_terminate(fp_project: Project) -> None:
    source = """
    def even(n):
        return n == 0 or odd(n - 1)

    def odd(n):
        return n != 0 and even(n - 1)

    def s(n):
        return even(n)
    """
    before, after = edited_digests(fp_project, source, source.replace("n != 0", "n > 0"))
    assert before != after


# --- library code is not hashed -----------------------------------------------------------


def test_library_functions_are_not_project_local(fp_project: Project) -> None:
    import ctloop
    from ctloop import step

    assert not is_project_local(np.mean)
    assert not is_project_local(np)
    assert not is_project_local(json.dumps)
    assert not is_project_local(json)
    assert not is_project_local(textwrap.dedent)
    assert not is_project_local(len)  # built-in: no source file
    assert not is_project_local(step)
    assert not is_project_local(ctloop.log_metric)
    assert not is_project_local(fingerprint.cache_key)
    fp_project.write("PFX_mine.py", "class C:\n    pass\n\ndef f():\n    return 1\n")
    mine = fp_project.load("PFX_mine")
    assert is_project_local(mine) and is_project_local(mine.f) and is_project_local(mine.C)


def test_step_calling_libraries_reaches_only_its_own_code(fp_project: Project) -> None:
    fp_project.write(
        "PFX_steps.py",
        """
        import json
        import numpy as np
        import ctloop
        from ctloop import step

        @step
        def s(x):
            ctloop.log_metric("n", len(x))
            return json.dumps({"mean": float(np.mean(x))})
        """,
    )
    mod = fp_project.load("PFX_steps")
    reached = {name for name, _ in fingerprint._reachable(mod.s.fn)}
    assert reached == {f"{mod.__name__}:s"}


def test_library_source_change_keeps_the_digest(
    fp_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed library: a module under a site-packages folder. Its version pins it.
    site = tmp_path / "venv" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    lib = f"{fp_project.prefix}lib"
    fp_project.write(
        "PFX_steps.py",
        f"""
        import {lib}
        from {lib} import smooth
        from ctloop import step

        @step
        def s(x):
            return smooth(x) + {lib}.other(x)
        """,
    )

    def install(body: str) -> None:
        path = site / f"{lib}.py"
        path.write_text(f"def smooth(x):\n    return {body}\n\ndef other(x):\n    return {body}\n")
        stamp = next(_mtimes)
        os.utime(path, (stamp, stamp))

    install("x + 1")
    before = fp_project.digest("PFX_steps")
    assert not is_project_local(sys.modules[lib].smooth)
    install("x * 1000")
    try:
        assert fp_project.digest("PFX_steps") == before
    finally:
        sys.modules.pop(lib, None)


# --- gaps: project code the step reaches that the digest misses ---------------------------


def test_dotted_package_path_helper_change_changes_the_digest(fp_project: Project) -> None:
    fp_project.write("PFX_pkg/__init__.py", "")
    fp_project.write(
        "PFX_steps.py",
        """
        import PFX_pkg.features
        from ctloop import step

        @step
        def s(x):
            return PFX_pkg.features.clean(x)
        """,
    )
    fp_project.write("PFX_pkg/features.py", "def clean(x):\n    return x + 1\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_pkg/features.py", "def clean(x):\n    return x * 2\n")
    assert fp_project.digest("PFX_steps") != before


def test_cached_helper_change_changes_the_digest(fp_project: Project) -> None:
    source = """
    import functools
    from ctloop import step

    @functools.cache
    def lookup(x):
        return x + 1

    @step
    def s(x):
        return lookup(x)
    """
    before, after = edited_digests(fp_project, source, source.replace("x + 1", "x + 2"))
    assert before != after


def test_helper_called_from_a_property_changes_the_digest(fp_project: Project) -> None:
    fp_project.write(
        "PFX_steps.py",
        """
        from ctloop import step
        from PFX_model import Config

        @step
        def s(x):
            return x * Config().factor
        """,
    )
    fp_project.write(
        "PFX_model.py",
        """
        from PFX_rules import factor

        class Config:
            @property
            def factor(self):
                return factor()
        """,
    )
    fp_project.write("PFX_rules.py", "def factor():\n    return 2\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_rules.py", "def factor():\n    return 3\n")
    assert fp_project.digest("PFX_steps") != before


def test_module_level_instance_method_change_changes_the_digest(fp_project: Project) -> None:
    source = """
    from ctloop import step

    class Scaler:
        def apply(self, x):
            return x * 2

    SCALER = Scaler()

    @step
    def s(x):
        return SCALER.apply(x)
    """
    before, after = edited_digests(fp_project, source, source.replace("x * 2", "x * 3"))
    assert before != after


def test_default_argument_helper_change_changes_the_digest(fp_project: Project) -> None:
    fp_project.write(
        "PFX_steps.py",
        """
        from ctloop import step
        from PFX_helpers import clean

        @step
        def s(x, fn=clean):
            return fn(x)
        """,
    )
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x + 1\n")
    before = fp_project.digest("PFX_steps")
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x + 2\n")
    assert fp_project.digest("PFX_steps") != before


def test_module_constant_change_changes_the_digest(fp_project: Project) -> None:
    source = """
    from ctloop import step

    N_TREES = 100

    @step
    def s(x):
        return x * N_TREES
    """
    before, after = edited_digests(fp_project, source, source.replace("100", "200"))
    assert before != after


def test_code_digest_of_a_step_is_that_of_its_function(fp_project: Project) -> None:
    fp_project.write("PFX_steps.py", HELPER_CALLER)
    fp_project.write("PFX_helpers.py", "def clean(x):\n    return x + 1\n")
    mod = fp_project.load("PFX_steps")
    assert code_digest(mod.s) == code_digest(mod.s.fn)


# --- cache_key ----------------------------------------------------------------------------

CODE = "c" * 64
INPUTS = {"df": "a" * 64, "model": "b" * 64}
MATS = {"df": "dataframe/1", "model": "model/1", "*": "dataframe/1,json/1,pickle/1"}


def test_cache_key_is_a_stable_sha256() -> None:
    key = cache_key(CODE, {"depth": 3}, INPUTS, MATS)
    assert len(key) == 64 and int(key, 16) >= 0
    assert cache_key(CODE, {"depth": 3}, dict(INPUTS), dict(MATS)) == key


@pytest.mark.parametrize(
    "change",
    [
        {"code": "d" * 64},
        {"params": {"depth": 4}},
        {"params": {"depth": 3, "seed": 0}},
        {"params": {"depth": "3"}},
        {"params": {"depth": 3.5}},
        {"inputs": {"df": "a" * 63 + "f", "model": "b" * 64}},
        {"inputs": {"df": "a" * 64}},
        {"inputs": {"frame": "a" * 64, "model": "b" * 64}},  # same digest, other argument
        {"materializers": {**MATS, "df": "pickle/1"}},
        {"materializers": {**MATS, "*": "dataframe/2,json/1,pickle/1"}},
    ],
    ids=[
        "code",
        "param-value",
        "extra-param",
        "param-type",
        "param-float",
        "input-digest",
        "fewer-inputs",
        "input-name",
        "input-materializer",
        "materializer-versions",
    ],
)
def test_cache_key_changes_with_each_part(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "code": CODE,
        "params": {"depth": 3},
        "inputs": INPUTS,
        "materializers": MATS,
    }
    assert cache_key(**{**base, **change}) != cache_key(**base)


def test_cache_key_tells_bools_from_ints() -> None:
    assert cache_key(CODE, {"flag": True}, {}, {}) != cache_key(CODE, {"flag": 1}, {}, {})


def test_cache_key_ignores_dict_order() -> None:
    params_a = {"depth": 3, "grid": {"lr": [0.1, 0.2], "min": {"a": 1, "b": None}}, "name": "x"}
    params_b = {"name": "x", "grid": {"min": {"b": None, "a": 1}, "lr": [0.1, 0.2]}, "depth": 3}
    inputs_b = dict(reversed(list(INPUTS.items())))
    mats_b = dict(reversed(list(MATS.items())))
    assert cache_key(CODE, params_a, INPUTS, MATS) == cache_key(CODE, params_b, inputs_b, mats_b)
    # but list order is data
    params_c = {**params_a, "grid": {"lr": [0.2, 0.1], "min": {"a": 1, "b": None}}}
    assert cache_key(CODE, params_a, INPUTS, MATS) != cache_key(CODE, params_c, INPUTS, MATS)
