"""Run the ``ctloop`` command line, killed with SIGKILL at one chosen point.

Usage: ``CTLOOP_KILLPOINT='<json>' python _killpoint.py loop run api ...``, where the JSON is::

    {"target": "ctloop.client.loop:LoopAPI.transition",  # module:function or module:Class.method
     "when": "after",                                     # "before" or "after" the real call
     "match": {"to_state": "CANARY", "step": 1},          # arguments the call must have (optional)
     "nth": 1}                                            # which matching call (default 1)

The real function is wrapped before the command line starts; at the ``nth`` call whose
arguments equal ``match`` the process writes ``KILLPOINT <target>`` to stderr and kills
itself with SIGKILL, just before or just after the real call. Nothing in ``ctloop`` knows
about it. ``match`` names arguments as the real signature does (``**kwargs`` are spread
out, so ``update_step``'s ``status`` is one); a dotted name reads an attribute of one
(``attempt.node``); enums compare by value, tuples as lists.
"""

from __future__ import annotations

import enum
import functools
import importlib
import inspect
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

ENV = "CTLOOP_KILLPOINT"


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _lookup(named: dict[str, Any], key: str) -> Any:
    first, *rest = key.split(".")
    value = named.get(first)
    for attr in rest:
        value = getattr(value, attr, None)
    return _plain(value)


def _die(target: str) -> None:
    os.write(2, f"KILLPOINT {target}\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(real: Callable[..., Any], spec: dict[str, Any]) -> Callable[..., Any]:
    signature = inspect.signature(real)
    match: dict[str, Any] = spec.get("match") or {}
    nth = int(spec.get("nth", 1))
    when = spec.get("when", "after")
    if when not in ("before", "after"):
        raise SystemExit(f"{ENV}: when must be 'before' or 'after', not {when!r}")
    seen = 0
    lock = threading.Lock()

    def chosen(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        nonlocal seen
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        named = dict(bound.arguments)
        for p in signature.parameters.values():
            if p.kind is inspect.Parameter.VAR_KEYWORD:  # update_step(id, **fields)
                named.update(named.pop(p.name, {}))
        if any(_lookup(named, k) != v for k, v in match.items()):
            return False
        with lock:
            seen += 1
            return seen == nth

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        hit = chosen(args, kwargs)
        if hit and when == "before":
            _die(spec["target"])
        result = real(*args, **kwargs)
        if hit:
            _die(spec["target"])
        return result

    return wrapper


def install(spec: dict[str, Any]) -> None:
    """Wrap the function ``spec["target"]`` names (see the module docstring)."""
    module_name, _, attr = spec["target"].partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    real = inspect.getattr_static(owner, name)
    if isinstance(real, staticmethod | classmethod):
        raise SystemExit(f"{ENV}: {spec['target']} is a static or class method; not supported")
    setattr(owner, name, _wrap(real, spec))


def main() -> None:
    install(json.loads(os.environ[ENV]))
    from ctloop.cli import main as cli_main

    cli_main(sys.argv[1:])


if __name__ == "__main__":
    main()
