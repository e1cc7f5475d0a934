"""Validation suites: which checks a table must pass, as readable YAML a person can edit.

A suite names the table-level checks (``row_count``) and, per column, the checks its
values must pass. Every check has a short form and a long form; the long form also sets a
``severity``: ``error`` (the default) fails validation, ``warn`` only reports::

    ctloop_suite: 1
    name: churn
    inferred_from: churn@1
    row_count: {min: 500, max: 1500}
    columns:
      customer_id:
        dtype: int64
        not_null: true
        unique: true
      monthly_charges:
        dtype: float64
        max_null_fraction: 0.07
        range: {min: 10.0, max: 131.5}
      contract:
        dtype: str
        not_null: {severity: warn}
        allowed_values: [month-to-month, one-year, two-year]

Column checks: ``dtype`` (exact pandas dtype name), ``not_null``, ``max_null_fraction``
(0..1), ``range`` (``min`` and/or ``max``; ``mostly``: the share of non-null values that
must be inside, default 1), ``allowed_values`` (a list, or ``{values, mostly}``),
``unique``. A column may say ``required: false`` to let it be absent. Mistakes in a
hand-edited file raise :class:`~ctloop.errors.InvalidInput` naming the line and the key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctloop.errors import InvalidInput, NotFound

__all__ = [
    "COLUMN_CHECKS",
    "FORMAT_VERSION",
    "SEVERITIES",
    "TABLE_CHECKS",
    "Check",
    "ColumnSpec",
    "Suite",
    "load",
    "save",
    "with_severity",
]

FORMAT_VERSION = 1
SEVERITIES = ("error", "warn")
COLUMN_CHECKS = (
    "dtype",
    "not_null",
    "max_null_fraction",
    "unique",
    "range",
    "allowed_values",
)
TABLE_CHECKS = ("row_count",)

_HEADER = """\
# ctloop validation suite: edit freely, then run: ctloop data validate NAME@V --suite FILE
# Column checks: dtype, not_null, max_null_fraction, unique, range {min, max, mostly},
# allowed_values [..]; table check: row_count {min, max}. Any check takes the long form
# {..., severity: warn} to report a failure without failing the validation.
"""


@dataclass(frozen=True)
class Check:
    """One check of a suite: its kind, the column it looks at, its parameters, its severity.

    ``params`` by kind: ``dtype`` ``{"value": "int64"}``; ``not_null`` and ``unique`` ``{}``;
    ``max_null_fraction`` ``{"value": 0.05}``; ``range`` ``{"min": 0, "max": 10}`` (either may
    be absent; ``"mostly"`` optional); ``allowed_values`` ``{"values": [...]}`` (``"mostly"``
    optional); ``row_count`` ``{"min": 10, "max": 100}`` (table level, ``column`` None).
    """

    kind: str
    column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"

    @property
    def id(self) -> str:
        """How reports name the check: ``row_count``, ``age.range``."""
        return self.kind if self.column is None else f"{self.column}.{self.kind}"


@dataclass(frozen=True)
class ColumnSpec:
    """The checks of one column; ``required`` False lets the column be absent."""

    name: str
    checks: tuple[Check, ...] = ()
    required: bool = True

    def check(self, kind: str) -> Check | None:
        """This column's check of ``kind``, or None."""
        return next((c for c in self.checks if c.kind == kind), None)


@dataclass(frozen=True)
class Suite:
    """A set of checks for a table, saved as YAML (see the module docstring for the format).

    Build one with :func:`ctloop.validation.infer_suite` from reference data, edit its YAML,
    and run it with :func:`ctloop.validation.validate`.
    """

    columns: tuple[ColumnSpec, ...] = ()
    table_checks: tuple[Check, ...] = ()
    name: str | None = None
    description: str | None = None
    inferred_from: str | None = None  # the dataset version (``NAME@V``) it was inferred from

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for col in self.columns:
            if col.name in seen:
                raise InvalidInput(f"suite has column {col.name!r} twice; give each column once")
            seen.add(col.name)

    @property
    def checks(self) -> list[Check]:
        """Every check: the table's first, then each column's, in suite order."""
        return [*self.table_checks, *(c for col in self.columns for c in col.checks)]

    def column(self, name: str) -> ColumnSpec:
        """The spec of column ``name``.

        Raises:
            NotFound: the suite has no such column.
        """
        for col in self.columns:
            if col.name == name:
                return col
        raise NotFound(
            f"the suite has no column {name!r}; its columns are {[c.name for c in self.columns]}"
        )

    # --- plain data and YAML ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The suite as plain data, in the layout of its YAML (short forms where possible)."""
        out: dict[str, Any] = {"ctloop_suite": FORMAT_VERSION}
        for key in ("name", "description", "inferred_from"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for check in self.table_checks:
            out[check.kind] = _emit(check)
        columns: dict[str, Any] = {}
        for col in self.columns:
            spec: dict[str, Any] = {} if col.required else {"required": False}
            for check in col.checks:
                spec[check.kind] = _emit(check)
            columns[col.name] = spec
        out["columns"] = columns
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "suite") -> Suite:
        """A suite from plain data laid out as its YAML.

        Raises:
            InvalidInput: naming the key that is wrong and what is expected there.
        """
        from ctloop.validation._suite_yaml import parse_data

        return parse_data(data, source)

    def to_yaml(self) -> str:
        """The suite as YAML: the text it was read from, or a fresh rendering with a header."""
        # The text a suite was read from (set by from_yaml, not a field, so copies made with
        # dataclasses.replace render afresh) keeps the user's comments and layout.
        text: str | None = getattr(self, "_text", None)
        if text is not None:
            return text
        from ctloop.validation._suite_yaml import dump

        body = dump(self.to_dict())
        return _HEADER + body

    @classmethod
    def from_yaml(cls, text: str | bytes, *, source: str = "suite") -> Suite:
        """Parse a suite from YAML text.

        Args:
            text: the YAML.
            source: how error messages name the text (a file name).

        Raises:
            InvalidInput: for malformed YAML, an unknown key, check or severity, or a value
                of the wrong type; the message gives the line and the key.
        """
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"{source}: the suite is not UTF-8 text ({exc})") from None
        if not isinstance(text, str):
            raise InvalidInput(f"{source}: a suite is YAML text, got {type(text).__name__}")
        from ctloop.validation._suite_yaml import parse

        suite = parse(text, source)
        object.__setattr__(suite, "_text", text if text.endswith("\n") else text + "\n")
        return suite

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the suite's YAML to ``path`` (its folder must exist); returns the path."""
        return save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Suite:
        """Read a suite from a YAML file (see :func:`load`)."""
        return load(path)


def save(suite: Suite, path: str | os.PathLike[str]) -> Path:
    """Write ``suite`` as YAML to ``path``; returns the path."""
    out = Path(path)
    if not out.parent.is_dir():
        raise NotFound(f"cannot write the suite to {str(path)!r}: no folder {str(out.parent)!r}")
    out.write_text(suite.to_yaml(), encoding="utf-8")
    return out


def load(path: str | os.PathLike[str]) -> Suite:
    """Read a suite from the YAML file ``path``.

    Raises:
        NotFound: no such file.
        InvalidInput: the file is not a valid suite (the message gives line and key).
    """
    p = Path(path)
    if not p.is_file():
        raise NotFound(
            f"no such suite file: {str(path)!r}; infer one from a dataset version with: "
            f"ctloop data suite NAME@VERSION -o {p.name or 'suite.yaml'}"
        )
    return Suite.from_yaml(p.read_bytes(), source=str(path))


# --- rendering ---------------------------------------------------------------------------


def _emit(check: Check) -> Any:
    """A check's YAML value: the short form when its severity is the default."""
    p = check.params
    if check.severity == "error":
        if check.kind in ("not_null", "unique"):
            return True
        if check.kind in ("dtype", "max_null_fraction"):
            return p["value"]
        if check.kind == "allowed_values" and "mostly" not in p:
            return list(p["values"])
    if check.kind in ("range", "row_count", "allowed_values"):
        body = dict(p)
    elif check.kind in ("dtype", "max_null_fraction"):
        body = {"value": p["value"]}
    else:
        body = {}
    if check.severity != "error":
        body["severity"] = check.severity
    return body


def with_severity(suite: Suite, severity: str, kinds: tuple[str, ...]) -> Suite:
    """A copy of ``suite`` whose checks of the given kinds have ``severity``.

    Raises:
        InvalidInput: for an unknown severity or kind.
    """
    if severity not in SEVERITIES:
        raise InvalidInput(f"unknown severity {severity!r}; use 'error' or 'warn'")
    for kind in kinds:
        if kind not in (*TABLE_CHECKS, *COLUMN_CHECKS):
            raise InvalidInput(
                f"unknown check {kind!r}; use one of: {', '.join((*TABLE_CHECKS, *COLUMN_CHECKS))}"
            )

    def fix(c: Check) -> Check:
        return dataclasses.replace(c, severity=severity) if c.kind in kinds else c

    return dataclasses.replace(
        suite,
        table_checks=tuple(fix(c) for c in suite.table_checks),
        columns=tuple(
            dataclasses.replace(col, checks=tuple(fix(c) for c in col.checks))
            for col in suite.columns
        ),
    )
