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
import functools
import hashlib
import inspect
import marshal
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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
    parts = sorted(_reachable(_unwrap(fn)))
    h = hashlib.sha256()
    for name, digest in parts:
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class _Constant:
    """A module-level value of a project module that code reads (``N_TREES = 100``)."""

    where: str
    value: str  # its repr


def _reachable(root: Any) -> set[tuple[str, str]]:
    """(qualified name, source digest) of ``root`` and every project-local object it uses."""
    seen: dict[int, tuple[str, str]] = {}
    constants: set[tuple[str, str]] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if isinstance(obj, _Constant):
            constants.add((obj.where, hashlib.sha256(obj.value.encode()).hexdigest()))
            continue
        if id(obj) in seen:
            continue
        seen[id(obj)] = (_qualname(obj), _source_digest(obj))
        todo.extend(d for d in _dependencies(obj) if isinstance(d, _Constant) or id(d) not in seen)
    return set(seen.values()) | constants


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def _unwrap(obj: Any) -> Any:
    """The function behind a step or a decorator (``functools.cache``, ``wraps``)."""
    from ctloop.pipelines.steps import Step

    if isinstance(obj, Step):
        obj = obj.fn
    try:
        return inspect.unwrap(obj) if callable(obj) else obj
    except ValueError:  # a cycle of __wrapped__
        return obj


_SIMPLE = (int, float, str, bytes, bool, type(None))


def _is_constant(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    if depth < 3 and isinstance(value, tuple | frozenset):
        return all(_is_constant(v, depth + 1) for v in value)
    return False


def _dependencies(obj: Any) -> Iterator[Any]:
    """Project-local functions, classes and constants that ``obj``'s code refers to."""
    if inspect.isclass(obj):
        for member in vars(obj).values():
            for inner in _members(member):
                if isinstance(inner, types.FunctionType):
                    yield from _dependencies(inner)
        for base in obj.__mro__[1:]:
            if base is not object and is_project_local(base):
                yield base
        return
    if not isinstance(obj, types.FunctionType):
        return
    names = set(_names(obj.__code__))
    module_name = obj.__module__
    candidates: list[tuple[str, Any]] = []
    for name in names:
        if name in obj.__globals__:
            candidates.append((f"{module_name}.{name}", obj.__globals__[name]))
    for cell in obj.__closure__ or ():
        try:
            candidates.append(("", cell.cell_contents))
        except ValueError:  # an empty cell
            pass
    for default in (*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values()):
        candidates.append(("", default))
    local_module = is_project_local(obj)
    for where, value in candidates:
        yield from _follow(where, value, names, local_module, depth=0)


def _follow(where: str, value: Any, names: set[str], local: bool, depth: int) -> Iterator[Any]:
    value = _unwrap(value)
    if isinstance(value, types.ModuleType):
        if depth > 5 or not is_project_local(value):
            return
        # module.attr (and pkg.sub.attr): the attributes the code names, in that module
        for name in names:
            if name in vars(value):
                yield from _follow(
                    f"{value.__name__}.{name}", vars(value)[name], names, True, depth + 1
                )
    elif _is_local_code(value):
        yield value
    elif where and local and _is_constant(value):
        yield _Constant(where, repr(value))
    elif not isinstance(value, type) and _is_local_code(type(value)):
        yield type(value)  # an instance of a project class: its methods are code it runs


def _members(member: Any) -> Iterator[Any]:
    """The functions inside a class attribute: methods, static/class methods, properties."""
    if isinstance(member, property):
        yield from (f for f in (member.fget, member.fset, member.fdel) if f is not None)
    elif isinstance(member, functools.cached_property):
        yield member.func
    else:
        yield _unwrap(getattr(member, "__func__", member))


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
