"""Cache keys: what a step's result depends on, hashed.

A step's key is the sha256 of its code, its params (canonical JSON), the digests of its
inputs and the versions of the materializers involved. Its code is the source of the
function *and of every project-local function, class and module-level helper it reaches*,
so editing a helper the step calls invalidates the cache (ZenML #1011 missed this).
Source is compared after parsing (decorators, comments and formatting do not count), so
reformatting a file or changing ``@step(retries=…)`` keeps the cache.

"Project-local" means defined in a file outside the standard library, site-packages and
ctloop itself: a library's code is pinned by its version (the environment), not hashed.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import marshal
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ctloop._internal.hashing import canonical_json

__all__ = ["CACHE_FORMAT", "cache_key", "code_digest", "is_project_local"]

CACHE_FORMAT = "ctloop-step-cache/1"  # bump when the key's recipe changes


def cache_key(
    code: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    materializers: Mapping[str, str],
) -> str:
    """The cache key of one step call.

    Args:
        code: :func:`code_digest` of the step.
        params: the call's plain arguments (JSON values).
        inputs: argument name → digest of the artifact it receives.
        materializers: argument or output name → ``NAME/VERSION`` of its materializer.
    """
    body = {
        "format": CACHE_FORMAT,
        "code": code,
        "params": dict(params),
        "inputs": dict(inputs),
        "materializers": dict(materializers),
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


@cache
def _library_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    import ctloop

    roots.add(os.path.realpath(os.path.dirname(ctloop.__file__)))
    return tuple(sorted(roots))


@cache
def _is_local_file(filename: str) -> bool:
    real = os.path.realpath(filename)
    if "site-packages" in Path(real).parts or "dist-packages" in Path(real).parts:
        return False
    return not any(real == r or real.startswith(r + os.sep) for r in _library_roots())


def is_project_local(obj: Any) -> bool:
    """True when ``obj`` (a function, class or module) is defined in the user's own files."""
    try:
        filename = inspect.getsourcefile(obj) if not isinstance(obj, str) else obj
    except TypeError:  # built-ins and C extensions
        return False
    return bool(filename) and _is_local_file(str(filename))


def code_digest(fn: Any) -> str:
    """sha256 of ``fn``'s normalised source and that of the project-local code it reaches."""
    parts = sorted(_reachable(fn))
    h = hashlib.sha256()
    for name, digest in parts:
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def _reachable(root: Any) -> set[tuple[str, str]]:
    """(qualified name, source digest) of ``root`` and every project-local object it uses."""
    seen: dict[int, tuple[str, str]] = {}
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen[id(obj)] = (_qualname(obj), _source_digest(obj))
        todo.extend(d for d in _dependencies(obj) if id(d) not in seen)
    return set(seen.values())


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def _unwrap(obj: Any) -> Any:
    from ctloop.pipelines.step import Step

    if isinstance(obj, Step):
        return obj.fn
    return obj


def _dependencies(obj: Any) -> Iterator[Any]:
    """Project-local functions and classes that ``obj``'s code refers to."""
    if inspect.isclass(obj):
        for member in vars(obj).values():
            inner = getattr(member, "__func__", member)  # staticmethod / classmethod
            if isinstance(inner, types.FunctionType):
                yield from _dependencies(inner)
        for base in obj.__mro__[1:]:
            if base is not object and is_project_local(base):
                yield base
        return
    if not isinstance(obj, types.FunctionType):
        return
    names = set(_names(obj.__code__))
    candidates: list[Any] = []
    for name in names:
        if name in obj.__globals__:
            candidates.append(obj.__globals__[name])
    for cell in obj.__closure__ or ():
        try:
            candidates.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    for value in candidates:
        value = _unwrap(value)
        if isinstance(value, types.ModuleType):
            if not is_project_local(value):
                continue
            # module.attr: the attributes the code names, when they live in that module
            for name in names:
                attr = _unwrap(getattr(value, name, None))
                if _is_local_code(attr):
                    yield attr
        elif _is_local_code(value):
            yield value


def _is_local_code(value: Any) -> bool:
    return (isinstance(value, types.FunctionType) or inspect.isclass(value)) and is_project_local(
        value
    )


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
            yield from _names(const)


def _source_digest(obj: Any) -> str:
    """sha256 of the parsed source (decorators, comments and layout removed)."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        # no source on disk (the REPL, exec): the compiled code stands in for it
        code = getattr(obj, "__code__", None)
        raw = marshal.dumps(_code_identity(code)) if code is not None else repr(obj).encode()
        return hashlib.sha256(raw).hexdigest()
    top = tree.body[0] if tree.body else None
    if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        top.decorator_list = []  # @step(retries=…) changes how it runs, not what it computes
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()


def _code_identity(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(
        _code_identity(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    )
    return (code.co_code, consts, code.co_names, code.co_varnames)
