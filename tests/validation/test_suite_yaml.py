"""Suites as YAML: round trips, the short and long forms, and errors that point at the line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ctloop.errors import InvalidInput, NotFound
from ctloop.validation import Check, ColumnSpec, Suite, load, save

FULL = Suite(
    name="orders",
    description="nightly orders export",
    inferred_from="orders@3",
    table_checks=(Check("row_count", params={"min": 10, "max": 1000}, severity="warn"),),
    columns=(
        ColumnSpec(
            "id",
            (
                Check("dtype", "id", {"value": "int64"}),
                Check("not_null", "id"),
                Check("unique", "id"),
            ),
        ),
        ColumnSpec(
            "price",
            (
                Check("dtype", "price", {"value": "float64"}),
                Check("max_null_fraction", "price", {"value": 0.05}),
                Check("range", "price", {"min": 0.5, "max": 99.25, "mostly": 0.99}),
            ),
        ),
        ColumnSpec(
            "status",
            (
                Check("not_null", "status", severity="warn"),
                Check("allowed_values", "status", {"values": ["new", "paid", "no", "1"]}),
            ),
            required=False,
        ),
        ColumnSpec("note"),
    ),
)


def test_a_suite_round_trips_through_yaml_and_reads_like_the_docs() -> None:
    text = FULL.to_yaml()
    assert text.startswith("# ctloop validation suite")
    again = Suite.from_yaml(text)
    assert again == FULL
    assert again.to_yaml() == text
    data = yaml.safe_load(text)
    assert data["row_count"] == {"min": 10, "max": 1000, "severity": "warn"}
    assert data["columns"]["id"] == {"dtype": "int64", "not_null": True, "unique": True}
    assert data["columns"]["price"]["range"] == {"min": 0.5, "max": 99.25, "mostly": 0.99}
    # strings that YAML would read as booleans or numbers are quoted, so they stay strings
    assert data["columns"]["status"]["allowed_values"] == ["new", "paid", "no", "1"]
    assert data["columns"]["status"]["not_null"] == {"severity": "warn"}
    assert data["columns"]["status"]["required"] is False
    assert data["columns"]["note"] == {}
    assert "  price:\n    dtype: float64\n" in text  # one block per column
    assert "range: {min: 0.5, max: 99.25, mostly: 0.99}" in text  # one line per check
    assert Suite.from_dict(FULL.to_dict()) == FULL


def test_checks_and_columns_are_reachable_by_name() -> None:
    assert [c.id for c in FULL.checks][:3] == ["row_count", "id.dtype", "id.not_null"]
    assert FULL.column("price").check("range") == FULL.columns[1].checks[2]
    assert FULL.column("note").check("dtype") is None
    with pytest.raises(NotFound, match="no column 'nope'"):
        FULL.column("nope")


def test_hand_written_short_and_long_forms_mean_the_same() -> None:
    short = Suite.from_yaml(
        """
        columns:
          a:
            dtype: int64
            not_null: true
            max_null_fraction: 0.1
            allowed_values: [1, 2]
            range: {min: 1e3}
          b:
            unique: false
            not_null: false
        """.replace("\n        ", "\n")
    )
    long = Suite.from_yaml(
        """
        ctloop_suite: 1
        columns:
          a:
            range: {min: 1000, severity: error}
            allowed_values: {values: [1, 2]}
            max_null_fraction: {value: 0.1}
            not_null: {}
            dtype: {value: int64}
          b: {}
        """.replace("\n        ", "\n")
    )
    assert short == long
    assert [c.kind for c in short.column("a").checks] == [
        "dtype",
        "not_null",
        "max_null_fraction",
        "range",
        "allowed_values",
    ]
    assert short.column("b").checks == ()  # false turns a check off


def test_a_loaded_suite_keeps_its_comments_until_it_is_changed(tmp_path: Path) -> None:
    text = "# why age stops at 120: see ticket 42\ncolumns:\n  age: {range: {max: 120}}\n"
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    suite = load(path)
    assert suite.to_yaml() == text
    assert save(suite, tmp_path / "copy.yaml").read_text() == text
    changed = dataclasses.replace(suite, name="ages")
    assert changed.to_yaml().startswith("# ctloop validation suite") and "name: ages" in (
        changed.to_yaml()
    )
    assert Suite.load(path) == suite
    suite.save(tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_text() == text


def _error(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        Suite.from_yaml(text, source="suite.yaml")
    return str(caught.value)


def test_an_unknown_check_names_line_column_and_the_closest_check() -> None:
    message = _error("columns:\n  age:\n    dtype: int64\n    ranges: {min: 0}\n")
    assert message.startswith("suite.yaml line 4: unknown check for column 'age': 'ranges'")
    assert "did you mean 'range'?" in message and "allowed_values" in message


def test_a_value_of_the_wrong_type_names_the_key_and_line() -> None:
    message = _error("columns:\n  age:\n    range:\n      min: zero\n      max: 10\n")
    assert message == "suite.yaml line 4: columns.age.range.min must be a number, got text 'zero'"
    message = _error("columns:\n  age:\n    not_null: 3\n")
    assert message.startswith("suite.yaml line 3: columns.age.not_null must be true, false")
    message = _error("columns:\n  c:\n    allowed_values: [a, [b]]\n")
    assert message == "suite.yaml line 3: columns.c.allowed_values[1] must be one value"
    message = _error("columns:\n  c:\n    max_null_fraction: 1.5\n")
    assert "columns.c.max_null_fraction is a share from 0 to 1, got 1.5" in message
    message = _error("row_count: {min: 10, max: 2}\ncolumns: {}\n")
    assert message == "suite.yaml line 1: row_count has min 10 above max 2"
    message = _error("row_count: {min: 1.5}\ncolumns: {}\n")
    assert "row_count.min must be a whole number" in message
    message = _error("columns:\n  c:\n    range: {mostly: 0.9}\n")
    assert "columns.c.range needs min, max or both" in message
    message = _error("columns:\n  c:\n    dtype: 5\n")
    assert "columns.c.dtype must be a pandas dtype name" in message
    message = _error("name: [a]\ncolumns: {}\n")
    assert message == "suite.yaml line 1: name must be text, got a list ['a']"


def test_an_unknown_severity_or_key_says_what_is_allowed() -> None:
    message = _error("columns:\n  age:\n    range: {min: 0, severity: fatal}\n")
    assert message.startswith("suite.yaml line 3: columns.age.range.severity is 'fatal'")
    assert "'error'" in message and "'warn'" in message
    message = _error("columns:\n  age:\n    range: {min: 0, maximum: 5}\n")
    assert "unknown key of columns.age.range: 'maximum'; did you mean 'max'?" in message
    message = _error("colums:\n  age: {}\n")
    assert message.startswith("suite.yaml line 1: unknown suite key 'colums'; did you mean")
    message = _error("columns:\n  age:\n    required: maybe\n")
    assert message == "suite.yaml line 3: columns.age.required must be true or false"


def test_malformed_yaml_and_odd_documents_are_clear_errors() -> None:
    unclosed = _error("columns:\n  age: {range: [1, 2\n")
    assert unclosed.startswith("suite.yaml line 3: not valid YAML")
    assert _error("") == "suite.yaml: the suite is empty; it needs at least 'columns:'"
    assert "has no 'columns:' mapping" in _error("name: x\n")
    assert "columns must be a mapping" in _error("columns: [a, b]\n")
    assert "the top level must be a mapping" in _error("- a\n- b\n")
    assert "given twice" in _error("columns:\n  a: {}\n  a: {}\n")
    assert "anchors and aliases" in _error("columns:\n  a: &x {dtype: int64}\n  b: *x\n")
    assert "ctloop_suite is 2" in _error("ctloop_suite: 2\ncolumns: {}\n")
    assert "not UTF-8" in str(pytest.raises(InvalidInput, Suite.from_yaml, b"\xff\xfe").value)
    deep = "columns: " + "[" * 5000 + "]" * 5000
    assert "not valid YAML" in _error(deep) or "nests too deeply" in _error(deep)


def test_load_of_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as missing:
        load(tmp_path / "suite.yaml")
    assert "no such suite file" in str(missing.value)
    assert "ctloop data suite NAME@VERSION -o suite.yaml" in str(missing.value)
    with pytest.raises(NotFound, match="no folder"):
        save(FULL, tmp_path / "nope" / "suite.yaml")


def test_a_suite_cannot_hold_a_column_twice() -> None:
    with pytest.raises(InvalidInput, match="column 'a' twice"):
        Suite(columns=(ColumnSpec("a"), ColumnSpec("a")))


def test_suites_load_without_pandas_or_pandera() -> None:
    probe = (
        "import sys; from ctloop import validation; "
        "s = validation.Suite.from_yaml('columns: {a: {dtype: int64}}'); "
        "s.to_yaml(); validation.ValidationReport; validation.SuiteRecord; "
        "print(sorted(m for m in ('pandas', 'pandera', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
