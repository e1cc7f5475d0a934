"""Reading and writing suite YAML: parse with the line of every key, dump readably.

Parsing composes the YAML into nodes first, so every key path keeps the line it came from
and a mistake in a hand-edited suite is reported as ``suite.yaml line 12: …`` naming the
key. Anchors and aliases are refused (no document can expand exponentially).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any, NoReturn

import yaml

from ctloop.errors import InvalidInput
from ctloop.validation.suite import (
    COLUMN_CHECKS,
    FORMAT_VERSION,
    SEVERITIES,
    TABLE_CHECKS,
    Check,
    ColumnSpec,
    Suite,
)

__all__ = ["dump", "parse", "parse_data"]

_TOP_KEYS = ("ctloop_suite", "name", "description", "inferred_from", *TABLE_CHECKS, "columns")
_COLUMN_KEYS = ("required", *COLUMN_CHECKS)


def parse(text: str, source: str) -> Suite:
    """The suite in YAML ``text``; errors name ``source``, the line and the key."""
    data, lines = _compose(text, source)
    return _Parser(source, lines).suite(data)


def parse_data(data: Any, source: str) -> Suite:
    """The suite in plain data laid out as its YAML (errors name the key, not a line)."""
    return _Parser(source, {}).suite(data)


def dump(data: dict[str, Any]) -> str:
    """YAML of a suite's :meth:`~Suite.to_dict`: blocks for columns, one line per check."""
    styled = dict(data)
    for kind in TABLE_CHECKS:
        if kind in styled:
            styled[kind] = _flow(styled[kind])
    styled["columns"] = {
        name: {key: _flow(value) for key, value in spec.items()}
        for name, spec in data["columns"].items()
    }
    return yaml.dump(styled, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# --- parsing ------------------------------------------------------------------------------

KeyPath = tuple[str | int, ...]


def _compose(text: str, source: str) -> tuple[Any, dict[KeyPath, int]]:
    """The YAML's plain data and the line (from 1) where each key path starts."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InvalidInput(f"{source}: the YAML nests too deeply to be a suite") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"{source}{where}: not valid YAML: {problem}") from None
    if node is None:
        raise InvalidInput(f"{source}: the suite is empty; it needs at least 'columns:'")
    lines: dict[KeyPath, int] = {}
    constructor = yaml.SafeLoader("")
    seen: set[int] = set()

    def plain(n: yaml.Node, path: KeyPath) -> Any:
        if id(n) in seen:  # an alias: refused, so no document can expand exponentially
            raise InvalidInput(
                f"{source} line {n.start_mark.line + 1}: YAML anchors and aliases (&, *) are "
                "not supported in a suite; write the value out"
            )
        seen.add(id(n))
        lines.setdefault(path, n.start_mark.line + 1)  # a key's own line, when it has one
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise InvalidInput(
                        f"{source} line {key_node.start_mark.line + 1}: keys must be plain "
                        "names, not lists or mappings"
                    )
                key = scalar(key_node)
                key = key if isinstance(key, str) else str(key)
                if key in out:
                    where = _render(path + (key,))
                    raise InvalidInput(
                        f"{source} line {key_node.start_mark.line + 1}: {where} is given twice; "
                        "keep one"
                    )
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = plain(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [plain(item, path + (i,)) for i, item in enumerate(n.value)]
        return scalar(n)

    def scalar(n: yaml.Node) -> Any:
        try:
            return constructor.construct_object(n, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InvalidInput(f"{source} line {n.start_mark.line + 1}: {problem}") from None

    try:
        return plain(node, ()), lines
    except RecursionError:
        raise InvalidInput(f"{source}: the YAML nests too deeply to be a suite") from None


def _render(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += part if not out else f".{part}"
    return out or "the top level"


def _kind_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Parser:
    """Turns plain data into a :class:`Suite`, with errors that point at key and line."""

    def __init__(self, source: str, lines: dict[KeyPath, int]) -> None:
        self.source = source
        self.lines = lines

    def fail(self, path: KeyPath, message: str) -> NoReturn:
        line = None
        for end in range(len(path), -1, -1):  # the nearest enclosing key with a line
            line = self.lines.get(path[:end])
            if line is not None:
                break
        where = f"{self.source} line {line}" if line is not None else self.source
        raise InvalidInput(f"{where}: {message}")

    def unknown(self, path: KeyPath, key: str, allowed: tuple[str, ...], what: str) -> NoReturn:
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        self.fail(path + (key,), f"unknown {what} {key!r}; {hint}use one of: {', '.join(allowed)}")

    def mapping(self, value: Any, path: KeyPath) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(path, f"{_render(path)} must be a mapping of keys, got {value!r}")
        return {str(k): v for k, v in value.items()}

    def suite(self, data: Any) -> Suite:
        top = self.mapping(data, ())
        for key in top:
            if key not in _TOP_KEYS:
                self.unknown((), key, _TOP_KEYS, "suite key")
        fmt = top.get("ctloop_suite", FORMAT_VERSION)
        if fmt != FORMAT_VERSION or isinstance(fmt, bool):
            self.fail(
                ("ctloop_suite",),
                f"ctloop_suite is {fmt!r}, but this ctloop reads suite format "
                f"{FORMAT_VERSION}; upgrade ctloop or re-infer the suite",
            )
        text = {k: self.text(top.get(k), (k,)) for k in ("name", "description", "inferred_from")}
        table = tuple(
            c for kind in TABLE_CHECKS if kind in top if (c := self.check(kind, None, top[kind]))
        )
        if "columns" not in top:
            self.fail((), "the suite has no 'columns:' mapping; add one (it may be empty: {})")
        raw = top["columns"] if top["columns"] is not None else {}
        columns = tuple(
            self.column(name, spec) for name, spec in self.mapping(raw, ("columns",)).items()
        )
        return Suite(columns=columns, table_checks=table, **text)

    def text(self, value: Any, path: KeyPath) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.fail(path, f"{_render(path)} must be text, got {_kind_name(value)} {value!r}")

    def column(self, name: str, spec: Any) -> ColumnSpec:
        path: KeyPath = ("columns", name)
        body = self.mapping({} if spec is None else spec, path)
        required = body.pop("required", True)
        if not isinstance(required, bool):
            self.fail(path + ("required",), f"columns.{name}.required must be true or false")
        checks: list[Check] = []
        for kind, value in body.items():
            if kind not in COLUMN_CHECKS:
                self.unknown(path, kind, _COLUMN_KEYS, f"check for column {name!r}:")
            check = self.check(kind, name, value)
            if check is not None:
                checks.append(check)
        order = {k: i for i, k in enumerate(COLUMN_CHECKS)}
        checks.sort(key=lambda c: order[c.kind])
        return ColumnSpec(name=name, checks=tuple(checks), required=required)

    # --- one check ---------------------------------------------------------------------

    def check(self, kind: str, column: str | None, value: Any) -> Check | None:
        path: KeyPath = (kind,) if column is None else ("columns", column, kind)
        severity = "error"
        if isinstance(value, Mapping):
            value = {str(k): v for k, v in value.items()}
            severity = self.severity(value.pop("severity", "error"), path)
        params = getattr(self, "_" + kind)(value, path)
        if params is None:
            return None
        return Check(kind=kind, column=column, params=params, severity=severity)

    def severity(self, value: Any, path: KeyPath) -> str:
        if value not in SEVERITIES:
            self.fail(
                path + ("severity",),
                f"{_render(path + ('severity',))} is {value!r}; use 'error' (fails the "
                "validation) or 'warn' (only reports)",
            )
        return str(value)

    def keys(self, value: dict[str, Any], path: KeyPath, allowed: tuple[str, ...]) -> None:
        for key in value:
            if key not in allowed:
                self.unknown(path, key, (*allowed, "severity"), f"key of {_render(path)}:")

    def number(self, value: Any, path: KeyPath) -> float | int:
        if isinstance(value, str):  # YAML 1.1 reads 1e6 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"{_render(path)} must be a number, got {_kind_name(value)} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, f"{_render(path)} must be a finite number, got {value!r}")
        return value

    def fraction(self, value: Any, path: KeyPath) -> float:
        number = self.number(value, path)
        if not 0 <= number <= 1:
            self.fail(path, f"{_render(path)} is a share from 0 to 1, got {value!r}")
        return float(number)

    def flag(self, value: Any, path: KeyPath) -> dict[str, Any] | None:
        if isinstance(value, dict):
            self.keys(value, path, ())
            return {}
        if not isinstance(value, bool):
            self.fail(
                path, f"{_render(path)} must be true, false or {{severity: warn}}, got {value!r}"
            )
        return {} if value else None

    def _not_null(self, value: Any, path: KeyPath) -> dict[str, Any] | None:
        return self.flag(value, path)

    def _unique(self, value: Any, path: KeyPath) -> dict[str, Any] | None:
        return self.flag(value, path)

    def _dtype(self, value: Any, path: KeyPath) -> dict[str, Any]:
        if isinstance(value, dict):
            self.keys(value, path, ("value",))
            value = value.get("value")
        if not isinstance(value, str) or not value.strip():
            self.fail(
                path,
                f"{_render(path)} must be a pandas dtype name such as int64, float64, str, "
                f"category, bool or datetime64[ns], got {value!r}",
            )
        return {"value": value.strip()}

    def _max_null_fraction(self, value: Any, path: KeyPath) -> dict[str, Any]:
        if isinstance(value, dict):
            self.keys(value, path, ("value",))
            return {"value": self.fraction(value.get("value"), path + ("value",))}
        return {"value": self.fraction(value, path)}

    def bounds(self, value: Any, path: KeyPath, extra: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"{_render(path)} must be a mapping like {{min: 0, max: 10}}")
        self.keys(value, path, ("min", "max", *extra))
        out: dict[str, Any] = {}
        for key in ("min", "max"):
            if value.get(key) is not None:
                out[key] = self.number(value[key], path + (key,))
        if not out:
            self.fail(path, f"{_render(path)} needs min, max or both")
        if "min" in out and "max" in out and out["min"] > out["max"]:
            self.fail(path, f"{_render(path)} has min {out['min']} above max {out['max']}")
        return out

    def mostly(self, value: dict[str, Any], path: KeyPath, out: dict[str, Any]) -> None:
        if value.get("mostly") is not None:
            share = self.fraction(value["mostly"], path + ("mostly",))
            if share == 0:
                self.fail(path + ("mostly",), f"{_render(path + ('mostly',))} must be above 0")
            if share < 1:
                out["mostly"] = share

    def _range(self, value: Any, path: KeyPath) -> dict[str, Any]:
        out = self.bounds(value, path, ("mostly",))
        self.mostly(value, path, out)
        return out

    def _row_count(self, value: Any, path: KeyPath) -> dict[str, Any]:
        out = self.bounds(value, path)
        for key, number in out.items():
            if not isinstance(number, int) or number < 0:
                self.fail(path + (key,), f"{_render(path + (key,))} must be a whole number >= 0")
        return out

    def _allowed_values(self, value: Any, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        values = value
        if isinstance(value, dict):
            self.keys(value, path, ("values", "mostly"))
            values = value.get("values")
            path_values = path + ("values",)
            self.mostly(value, path, out)
        else:
            path_values = path
        if not isinstance(values, list) or not values:
            self.fail(path_values, f"{_render(path_values)} must be a non-empty list of values")
        for i, item in enumerate(values):
            if isinstance(item, dict | list):
                self.fail(path_values + (i,), f"{_render(path_values + (i,))} must be one value")
        return {"values": list(values), **out}


# --- dumping ---------------------------------------------------------------------------


class _Flow(dict):
    """A mapping written on one line: ``{min: 0, max: 10}``."""


class _FlowList(list):
    """A list written on one line (wrapped when long): ``[a, b, c]``."""


def _flow(value: Any) -> Any:
    """A check's YAML value in flow style (check bodies are short; columns stay blocks)."""
    if isinstance(value, dict):
        return _Flow({k: _flow(v) for k, v in value.items()})
    if isinstance(value, list):
        return _FlowList(value)
    return value


class _Dumper(yaml.SafeDumper):
    """Safe YAML with one-line check bodies and value lists."""


def _flow_dict(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _flow_list(dumper: yaml.SafeDumper, data: _FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _block_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=not data)


_Dumper.add_representer(_Flow, _flow_dict)
_Dumper.add_representer(_FlowList, _flow_list)
_Dumper.add_representer(dict, _block_dict)
