"""Profiles of tabular data (CSV and Parquet), computed with pyarrow.

A profile is plain JSON, stored once with the dataset version it describes::

    {"format": "csv", "files": 1, "row_count": 1000,
     "columns": {"age": {"type": "int64", "kind": "numeric", "null_count": 3,
                         "min": 18, "max": 90, "mean": 41.2, "std": 12.9,
                         "quantiles": {"p01": 18.0, …, "p99": 88.0}, "distinct": 70},
                 "city": {"type": "string", "kind": "string", "null_count": 0,
                          "distinct": 12, "top": [{"value": "Oslo", "count": 310}, …]},
                 …}}

``std`` is the sample standard deviation (ddof=1, as pandas reports it); quantiles are
exact, linearly interpolated (as ``pandas.Series.quantile``). NaN in float columns is
counted in ``nan_count`` and left out of the statistics. Data that cannot be read still
gets a version: its profile is ``{"error": "…"}``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PERCENTILES",
    "TOP_K",
    "TableProfile",
    "detect_format",
    "profile_data",
    "tabular_files",
]

PERCENTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TOP_K = 10
MAX_VALUE_CHARS = 200  # top categories keep at most this much of each value

_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".csv.bz2": "csv",
}


@dataclass(frozen=True)
class TableProfile:
    """What profiling found: row count, schema and per-column statistics (or an error)."""

    row_count: int | None
    schema: list[dict[str, Any]] | None
    profile: dict[str, Any]


def _format_of(name: str) -> str | None:
    lower = name.lower()
    for suffix, fmt in _SUFFIXES.items():
        if lower.endswith(suffix):
            return fmt
    return None


def tabular_files(path: str | os.PathLike[str]) -> list[Path]:
    """The data files of a folder, sorted, skipping hidden and ``_``-prefixed bookkeeping.

    Spark and friends leave ``_SUCCESS`` and ``.part-….crc`` files beside their output;
    they are not data.
    """
    root = Path(path)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            if not name.startswith((".", "_")):
                found.append(Path(dirpath) / name)
    return found


def detect_format(path: str | os.PathLike[str]) -> str | None:
    """``csv`` or ``parquet`` for a file (or a folder of such files of one format), else None."""
    p = Path(path)
    if p.is_dir():
        formats = {_format_of(f.name) for f in tabular_files(p)}
        if len(formats) == 1:
            return formats.pop()
        return None
    return _format_of(p.name)


def profile_data(path: str | os.PathLike[str], fmt: str) -> TableProfile:
    """Profile a CSV or Parquet file, or a folder of them; never raises for bad data.

    Profiling is best effort: whatever goes wrong reading the data (a malformed CSV, a
    truncated Parquet file, mixed schemas) is recorded as ``{"error": "…"}`` and the
    version is still created, because losing a version over its statistics would be worse.
    """
    p = Path(path)
    files = tabular_files(p) if p.is_dir() else [p]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyarrow's own notices must not abort an add
            return _profile(files, fmt)
    except Exception as exc:  # best effort by design, see the docstring
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return TableProfile(
            None, None, {"format": fmt, "error": f"{type(exc).__name__}: {message}"[:1000]}
        )


def _profile(files: Sequence[Path], fmt: str) -> TableProfile:
    if not files:
        raise ValueError("the folder holds no data files")
    import pyarrow.dataset as ds

    columns: dict[str, Any] = {}
    if fmt == "parquet":
        dataset = _parquet_dataset(files)
        schema = dataset.schema
        row_count = int(dataset.count_rows())
        # Column by column: memory holds one column at a time, not the whole table.
        for i, field in enumerate(schema):
            col = dataset.to_table(columns={field.name: ds.field(i)}).column(0)
            columns[_unique(field.name, columns)] = _column(col)
    elif fmt == "csv":
        table = _read_csv(files)
        schema = table.schema
        row_count = table.num_rows
        for i, field in enumerate(schema):
            columns[_unique(field.name, columns)] = _column(table.column(i))
    else:
        raise ValueError(f"unknown tabular format {fmt!r}")
    fields = [{"name": f.name, "type": str(f.type), "nullable": bool(f.nullable)} for f in schema]
    profile = {"format": fmt, "files": len(files), "row_count": row_count, "columns": columns}
    return TableProfile(row_count, _clean(fields), _clean(profile))


def _unique(name: str, seen: dict[str, Any]) -> str:
    """A key for ``name`` not yet in ``seen`` (CSV headers may repeat a name)."""
    key, n = name, 1
    while key in seen:
        n += 1
        key = f"{name}.{n}"
    return key


def _parquet_dataset(files: Sequence[Path]) -> Any:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    first = pq.read_schema(files[0])
    for f in files[1:]:
        other = pq.read_schema(f)
        if not other.equals(first, check_metadata=False):
            raise ValueError(
                f"the files do not share one schema: {f.name} has {_describe(other)} "
                f"but {files[0].name} has {_describe(first)}"
            )
    return ds.dataset([str(f) for f in files], format="parquet", schema=first)


def _read_csv(files: Sequence[Path]) -> Any:
    import pyarrow as pa
    from pyarrow import csv

    tables = [csv.read_csv(f) for f in files]
    names = tables[0].schema.names
    for f, t in zip(files[1:], tables[1:], strict=True):
        if t.schema.names != names:
            raise ValueError(
                f"the files do not share one schema: {f.name} has columns {t.schema.names} "
                f"but {files[0].name} has {names}"
            )
    if len(tables) == 1:
        return tables[0]
    # Type inference may differ per file (int in one, double in another): promote.
    return pa.concat_tables(tables, promote_options="permissive")


def _describe(schema: Any) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def _column(col: Any) -> dict[str, Any]:
    """Statistics of one column (a pyarrow ChunkedArray)."""
    import pyarrow as pa

    out: dict[str, Any] = {"type": str(col.type), "null_count": int(col.null_count)}
    try:
        if pa.types.is_dictionary(col.type):  # pandas categoricals
            col = col.cast(col.type.value_type)
        t = col.type
        if pa.types.is_boolean(t):
            out.update(_boolean(col))
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            out.update(_numeric(col))
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
            out.update(_categorical(col))
        elif pa.types.is_temporal(t):
            out.update(_temporal(col))
        else:
            out["kind"] = "other"
    except Exception as exc:  # one odd column must not cost the profile of the others
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    return out


def _is_string_view(t: Any) -> bool:
    import pyarrow as pa

    check = getattr(pa.types, "is_string_view", None)
    return bool(check(t)) if check is not None else False


def _boolean(col: Any) -> dict[str, Any]:
    import pyarrow.compute as pc

    true = int(pc.sum(col).as_py() or 0)
    valid = len(col) - col.null_count
    return {"kind": "boolean", "true": true, "false": valid - true}


def _numeric(col: Any) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, Any] = {"kind": "numeric"}
    if pa.types.is_decimal(col.type) or col.type == pa.float16():
        col = col.cast(pa.float64())
    if pa.types.is_floating(col.type):
        nan = pc.is_nan(col)
        out["nan_count"] = int(pc.sum(nan).as_py() or 0)
        if out["nan_count"]:
            col = pc.filter(col, pc.invert(nan))  # drops nulls too
    col = col.drop_null()
    if len(col) == 0:
        out.update(min=None, max=None, mean=None, std=None, quantiles=None, distinct=0)
        return out
    bounds = pc.min_max(col).as_py()
    quantiles = pc.quantile(col, q=list(PERCENTILES), interpolation="linear").to_pylist()
    out.update(
        min=bounds["min"],
        max=bounds["max"],
        mean=pc.mean(col).as_py(),
        std=pc.stddev(col, ddof=1).as_py(),
        quantiles={_pname(q): v for q, v in zip(PERCENTILES, quantiles, strict=True)},
        distinct=int(pc.count_distinct(col).as_py()),
    )
    return out


def _pname(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _categorical(col: Any) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = pc.value_counts(col.drop_null())
    table = pa.table({"value": counts.field("values"), "count": counts.field("counts")})
    top = table.sort_by([("count", "descending"), ("value", "ascending")]).slice(0, TOP_K)
    return {
        "kind": "string",
        "distinct": len(counts),
        "top": [{"value": _short(r["value"]), "count": int(r["count"])} for r in top.to_pylist()],
    }


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    return value


def _temporal(col: Any) -> dict[str, Any]:
    import pyarrow.compute as pc

    bounds = pc.min_max(col)
    return {
        "kind": "temporal",
        "min": _iso(bounds["min"]),
        "max": _iso(bounds["max"]),
    }


def _iso(scalar: Any) -> str | None:
    if not scalar.is_valid:
        return None
    try:
        value = scalar.as_py()
    except (ValueError, OverflowError):  # out of Python's datetime range
        return str(scalar)
    iso = getattr(value, "isoformat", None)
    return str(iso()) if iso is not None else str(value)


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None (PostgreSQL's json rejects NaN), bytes text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, str | int | bool):
        return value
    iso = getattr(value, "isoformat", None)  # date, time, datetime
    if iso is not None:
        return str(iso())
    return str(value)
