"""Reading a policy file: the YAML, and the machinery that collects problems by path.

:class:`Problems` gathers each problem as a path (``rollout.steps[1]``) and a message;
:class:`Section` reads one mapping of the file, checking keys (with close-key suggestions)
and value types. :mod:`ctloop.loop._policy_checks` reads the sections with them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from ctloop.errors import InvalidInput

#: The top-level sections of a policy, in the order problems are listed.
SECTIONS = (
    "deployment",
    "model",
    "triggers",
    "training_data",
    "pipeline",
    "gate",
    "rollout",
    "guards",
)
_NO_VALUE = object()


def _show(value: Any) -> str:
    text = "nothing (null)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Problems:
    """The problems found so far, each a path and a message."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.found.append((path, message))

    def under(self, path: str) -> bool:
        """Whether a problem was found at ``path`` or inside it."""
        return any(p == path or p.startswith((path + ".", path + "[")) for p, _ in self.found)

    def raise_if_any(self) -> None:
        if not self.found:
            return

        def section(item: tuple[str, str]) -> int:
            head = re.split(r"[.\[]", item[0], maxsplit=1)[0]
            return SECTIONS.index(head) if head in SECTIONS else -1

        lines = [
            f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}"
            for path, message in sorted(self.found, key=section)
        ]
        raise InvalidInput("\n".join(lines))


class Section:
    """A mapping of the file, read key by key; unknown keys are reported on creation."""

    def __init__(
        self, problems: Problems, path: str, data: Mapping[Any, Any], keys: Sequence[str]
    ) -> None:
        self.problems, self.path, self.data = problems, path, data
        for key in data:
            if not isinstance(key, str):
                problems.add(path, f"keys are text; got the key {_show(key)}")
            elif key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.add(path, f"unknown key {key!r}{hint} (keys: {', '.join(keys)})")

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def given(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def bad(self, key: str, message: str) -> None:
        self.problems.add(self.at(key), message)

    def text(
        self, key: str, default: Any, *, choices: Sequence[str] = (), nullable: bool = False
    ) -> Any:
        value = self.data.get(key, default)
        if value is None and nullable:
            return None
        if value is _NO_VALUE:
            self.bad(key, "is required")
        elif not isinstance(value, str) or not value.strip():
            self.bad(key, f"expected text, got {_show(value)}")
        elif choices and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.bad(key, f"must be one of {', '.join(choices)}, got {value!r}{hint}")
        else:
            return value
        return None if default is _NO_VALUE else default

    def number(
        self,
        key: str,
        default: Any,
        *,
        above: float | None = None,
        at_least: float | None = None,
        at_most: float | None = None,
        below: float | None = None,
        nullable: bool = False,
        why: str = "",
    ) -> Any:
        value = self.data.get(key, default)
        if value is None and nullable:
            return None
        if value is _NO_VALUE:
            self.bad(key, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = ""
            if isinstance(value, str):
                try:
                    float(value)
                    hint = " (YAML reads this as text; write it with a dot, e.g. 1.0e-3)"
                except ValueError:
                    pass
            self.bad(key, f"expected a number, got {_show(value)}{hint}")
            return default
        if not math.isfinite(value):
            self.bad(key, f"must be a finite number, got {value!r}")
            return default
        why = f" ({why})" if why else ""
        low = (">", above) if above is not None else (">=", at_least)
        high = ("<", below) if below is not None else ("<=", at_most)
        if low[1] is not None and high[1] is not None:
            ok = (value > low[1] if low[0] == ">" else value >= low[1]) and (
                value < high[1] if high[0] == "<" else value <= high[1]
            )
            if not ok:
                left = "(" if low[0] == ">" else "["
                right = ")" if high[0] == "<" else "]"
                span = f"{left}{low[1]:g}, {high[1]:g}{right}"
                self.bad(key, f"must be in {span}{why}, got {value!r}")
                return default
        elif low[1] is not None and not (value > low[1] if low[0] == ">" else value >= low[1]):
            words = "above" if low[0] == ">" else "at least"
            self.bad(key, f"must be {words} {low[1]:g}{why}, got {value!r}")
            return default
        return float(value)

    def integer(self, key: str, default: Any, *, minimum: int = 0, why: str = "") -> Any:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(key, f"expected a whole number, got {_show(value)}")
            return default
        if value < minimum:
            why = f" ({why})" if why else ""
            self.bad(key, f"must be {minimum} or more{why}, got {value}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.bad(key, f"expected true or false, got {_show(value)}")
            return default
        return value

    def duration(self, key: str, default: timedelta, *, allow_zero: bool = False) -> timedelta:
        value = self.data.get(key, default)
        if isinstance(value, timedelta):
            return value
        if allow_zero and (value == 0 or (isinstance(value, str) and _ZERO.match(value))):
            return timedelta(0)
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.bad(key, f"expected a duration like 30m, 6h or 7d, got {value!r} (add a unit)")
            return default
        from ctloop.monitoring.windows import parse_window

        try:
            span = parse_window(str(value)) if isinstance(value, str) else None
        except InvalidInput:
            span = None
        if span is None:
            zero = " (or 0 for none)" if allow_zero else ""
            self.bad(
                key,
                f"expected a duration like 45s, 30m, 6h, 7d or 1w{zero}, got {_show(value)}",
            )
            return default
        if span.microseconds:
            self.bad(key, f"must be a whole number of seconds, got {value!r}")
            return default
        return span

    def name(self, key: str, what: str) -> str | None:
        from ctloop._internal.names import check_name

        value = self.text(key, None, nullable=True)
        if value is None:
            return None
        try:
            return check_name(value, what)
        except InvalidInput as exc:
            self.bad(key, str(exc))
            return None

    def section(self, key: str, keys: Sequence[str], *, switch: bool = False) -> Any:
        """The mapping at ``key`` as a :class:`Section`; with ``switch``, ``true`` is an
        empty mapping (the defaults) and ``false`` or null is None (off)."""
        value = self.data.get(key)
        if switch and value is True:
            value = {}
        if value is None or (switch and value is False):
            return None
        if not isinstance(value, Mapping):
            also = ", true or false" if switch else ""
            self.bad(key, f"expected a mapping{also}, got {_show(value)}")
            return None
        return Section(self.problems, self.at(key), value, keys)


_ZERO = re.compile(r"^\s*0+(?:\.0*)?\s*[smhdw]?\s*$")


# --- YAML -----------------------------------------------------------------------------------


def read_yaml(text: str, source: str) -> Any:
    """The YAML document in ``text``; a syntax error or duplicate key names its line."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor below reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return loader.construct_mapping(node, deep=True)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or str(exc)
        if "alias" in problem or "alias" in (exc.context or ""):
            problem += '; quote values that start with *, e.g. cron: "*/15 * * * *"'
        raise InvalidInput(f"{source}: {where}YAML error: {problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: YAML error: {exc}") from None
