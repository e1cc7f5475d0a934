"""What every inference protocol shares: the parsed request, its error, and frame building.

A parser turns a JSON body into a :class:`ParsedRequest` whose ``frame`` has already been
validated against the routed version's signature, or raises :class:`RequestInvalid` listing
every problem it found: the body's shape, the values, then the signature's own checks. Only
JSON scalars are accepted as cell values (a nested list or object in a cell is a problem, not
a crash), so no body can make a parser raise anything else.

Columns the signature does not name are a problem by default (the issue asks for "unknown
column" to be reported); a server that wants MLflow's leniency passes
``allow_extra_columns=True`` and they are dropped instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError, InvalidInput, PayloadTooLarge
from ctloop.models.signature import SignatureMismatch

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.models.signature import Signature

__all__ = ["ParsedRequest", "RequestInvalid", "check_body_size", "error_body", "error_status"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
MAX_LISTED = 5  # rows or names quoted per problem


class RequestInvalid(InvalidInput):
    """An inference request that cannot be served; ``problems`` lists every issue (400)."""

    def __init__(self, problems: list[str]) -> None:
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"- {p}" for p in problems)
        super().__init__(f"the request is invalid ({len(problems)} {noun}):\n{lines}")
        self.problems = problems

    def __reduce__(self) -> tuple[type[RequestInvalid], tuple[list[str]]]:
        return (type(self), (self.problems,))


@dataclass
class ParsedRequest:
    """A request ready for the model: its rows, and what the response must echo.

    Attributes:
        frame: the rows, validated against the signature (exactly its columns, in order).
        protocol: ``oip``, ``kserve_v1``, ``mlflow`` or ``plain``.
        id: the request id to echo (OIP), or None.
        outputs_requested: output names asked for (OIP ``outputs``), or None for all.
        parameters: the request's ``parameters`` / ``params`` object, if any.
        values: the frame's columns as lists of Python values, when parsing had them at
            hand (the numeric fast path); the prediction log reads them instead of
            converting the frame back.
    """

    frame: pd.DataFrame
    protocol: str
    id: str | None = None
    outputs_requested: list[str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    values: dict[str, list[Any]] | None = None

    @property
    def n_rows(self) -> int:
        return len(self.frame)


def error_status(error: BaseException) -> int:
    """The HTTP status for an error raised while parsing or formatting (4xx for bad input)."""
    return error.http_status if isinstance(error, CtloopError) else 400


def error_body(error: BaseException | str) -> dict[str, str]:
    """``{"error": "…"}``: the error body of the Open Inference Protocol and KServe V1."""
    return {"error": str(error)}


def check_body_size(size: int, limit: int) -> None:
    """Refuse a request body of ``size`` bytes over ``limit`` before it is parsed.

    Raises:
        PayloadTooLarge: (413) saying the limit and how to stay under it.
    """
    if size > limit:
        raise PayloadTooLarge(
            f"the request body is {size} bytes, more than this endpoint's limit of {limit}; "
            "send fewer rows per request"
        )


# --- building a frame from JSON -------------------------------------------------------------


def scalar_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a cell of a frame, or None when it can."""
    if value is None or isinstance(value, bool | str | float):
        return None
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return None
        return f"integer {value} does not fit in 64 bits"
    kind = (
        "a list"
        if isinstance(value, list | tuple)
        else ("an object" if isinstance(value, Mapping) else type(value).__name__)
    )
    return f"got {kind} where a single value was expected"


def cell_problems(where: str, values: Sequence[Any], problems: list[str]) -> bool:
    """Add one problem for the non-scalar cells among ``values``; True when all are fine."""
    bad = [(i, p) for i, v in enumerate(values) if (p := scalar_problem(v)) is not None]
    if bad:
        rows = ", ".join(str(i) for i, _ in bad[:MAX_LISTED]) + (
            ", …" if len(bad) > MAX_LISTED else ""
        )
        problems.append(f"{where}: {bad[0][1]} (rows {rows})")
    return not bad


def row_count_problem(n: int, max_rows: int) -> str | None:
    if n == 0:
        return "the request has no rows"
    if n > max_rows:
        return (
            f"the request has {n} rows, more than this endpoint's limit of {max_rows}; "
            "split it into smaller requests"
        )
    return None


def frame_from_columns(columns: Mapping[str, Sequence[Any]], n: int) -> pd.DataFrame:
    """A frame from equal-length lists of JSON scalars (checked by the caller)."""
    import pandas as pd

    if not columns:
        return pd.DataFrame(index=range(n))
    return pd.DataFrame({name: _series(values) for name, values in columns.items()})


def _series(values: Sequence[Any]) -> pd.Series:
    import pandas as pd

    # object first, then infer: keeps [1, None] integral-looking and [True, None] boolean
    # for the signature's type checks instead of letting the constructor guess
    series = pd.Series(list(values), dtype=object)
    return series.infer_objects()


def columns_from_records(
    records: Sequence[Any], what: str, problems: list[str]
) -> dict[str, list[Any]] | None:
    """Columns from a list of records (objects of column → value), or None with problems."""
    not_objects = [i for i, r in enumerate(records) if not isinstance(r, Mapping)]
    if not_objects:
        shown = ", ".join(str(i) for i in not_objects[:MAX_LISTED])
        problems.append(
            f"{what}: each row must be an object of column to value; rows {shown} are not"
        )
        return None
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(str(k) for k in record))
    columns = {name: [r.get(name) for r in records] for name in names}
    ok = all(
        [cell_problems(f"{what}, column {name!r}", v, problems) for name, v in columns.items()]
    )
    return columns if ok else None


def columns_from_rows(
    rows: Sequence[Any], names: list[str] | None, what: str, problems: list[str]
) -> dict[str, list[Any]] | None:
    """Columns from rows given as lists of values, by position onto ``names`` (the
    signature's columns), or ``x0``, ``x1`` … without names."""
    not_lists = [i for i, r in enumerate(rows) if not isinstance(r, list | tuple)]
    if not_lists:
        shown = ", ".join(str(i) for i in not_lists[:MAX_LISTED])
        problems.append(f"{what}: each row must be a list of values; rows {shown} are not")
        return None
    widths = sorted({len(r) for r in rows})
    want = len(names) if names is not None else widths[0]
    wrong = [i for i, r in enumerate(rows) if len(r) != want]
    if wrong:
        shown = ", ".join(f"{i} ({len(rows[i])})" for i in wrong[:MAX_LISTED])
        problems.append(
            f"{what}: rows must have {want} values, one for each of {names} in that "
            f"order; rows {shown} do not"
            if names is not None
            else f"{what}: rows have different lengths ({widths}); rows {shown} differ from "
            f"the first"
        )
        return None
    columns = {
        (names[j] if names is not None else f"x{j}"): [r[j] for r in rows] for j in range(want)
    }
    ok = all(
        [cell_problems(f"{what}, column {name!r}", v, problems) for name, v in columns.items()]
    )
    return columns if ok else None


def equal_lengths(columns: Mapping[str, Any], what: str, problems: list[str]) -> int | None:
    """The common length of columns given as lists, or None with a problem."""
    lengths: dict[str, int] = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            problems.append(f"{what}: column {name!r} must be a list of values")
        else:
            lengths[name] = len(values)
    if len(lengths) != len(columns):
        return None
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in list(lengths.items())[: MAX_LISTED * 2])
        problems.append(f"{what}: columns have different numbers of rows ({shown})")
        return None
    return next(iter(lengths.values()), 0)


def validated_frame(
    columns: Mapping[str, Sequence[Any]] | None,
    n: int,
    signature: Signature | None,
    problems: list[str],
    *,
    allow_extra_columns: bool,
) -> tuple[pd.DataFrame, dict[str, list[Any]] | None]:
    """The rows of ``columns`` checked against the signature (see :func:`validated`).

    Numeric signatures (float, integer and boolean columns) whose request gives exactly
    their columns, with values of exactly the right JSON types and no nulls, take a fast
    path that builds the typed frame directly: the result is what
    :meth:`Signature.validate` returns for the same values, at a fraction of the cost.
    Anything else takes the general path.

    Returns:
        the frame, and its columns as lists of typed Python values when the fast path
        built it (None otherwise).
    """
    if columns is not None and not problems and signature is not None:
        fast = _numeric_frame(columns, n, signature)
        if fast is not None:
            return fast
    frame = frame_from_columns(columns, n) if columns is not None else None
    return validated(frame, signature, problems, allow_extra_columns=allow_extra_columns), None


_NONE_TYPE = type(None)


def _numeric_frame(
    columns: Mapping[str, Sequence[Any]], n: int, signature: Signature
) -> tuple[pd.DataFrame, dict[str, list[Any]]] | None:
    """The fast path of :func:`validated_frame`, or None to take the general one.

    Handles float, integer, boolean, string and string-category columns whose values all
    have exactly the right JSON type (``None`` where the column is nullable), producing
    what :meth:`Signature.validate` produces for them.
    """
    import numpy as np
    import pandas as pd

    specs = signature.inputs
    if n == 0 or len(columns) != len(specs):
        return None
    arrays: dict[str, Any] = {}
    typed: dict[str, list[Any]] = {}
    for spec in specs:
        values = columns.get(spec.name)
        if values is None or len(values) != n:
            return None
        kinds = set(map(type, values))  # one pass in C
        has_none = _NONE_TYPE in kinds
        if has_none and not spec.nullable:
            return None  # the general path reports the nulls
        present = [v for v in values if v is not None] if has_none else values
        kinds.discard(_NONE_TYPE)
        array: Any
        try:
            if spec.dtype == "float" and kinds <= {float, int}:
                array = np.array(
                    [np.nan if v is None else v for v in values] if has_none else values,
                    dtype="float64",
                )
            elif spec.dtype == "integer" and kinds <= {int} and present:
                array = (
                    np.array([np.nan if v is None else v for v in values], dtype="float64")
                    if has_none
                    else np.array(values, dtype="int64")
                )
            elif spec.dtype == "boolean" and kinds == {bool} and not has_none:
                array = np.array(values, dtype="bool")
            elif spec.dtype == "string" and kinds == {str}:
                array = pd.Series(list(values), dtype=object).infer_objects()
            elif (
                spec.dtype == "category"
                and kinds == {str}
                and spec.categories
                and all(type(c) is str for c in spec.categories)
            ):
                # unknown categories become missing, as Signature.validate does
                known = set(spec.categories)
                array = pd.Categorical(
                    [v if v in known else None for v in values], categories=spec.categories
                )
            else:
                return None
        except (OverflowError, ValueError):  # e.g. an integer past 64 bits: the slow path says so
            return None
        arrays[spec.name] = array
        if isinstance(array, np.ndarray):  # numbers as the frame holds them (1 -> 1.0)
            converted = array.tolist()
            typed[spec.name] = (
                [None if v is None else x for v, x in zip(values, converted, strict=True)]
                if has_none
                else converted
            )
        else:
            typed[spec.name] = list(values)
    names = signature.input_names
    index = _index(tuple(names))
    if all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays.values()):
        block = np.column_stack([arrays[c] for c in names])
        return pd.DataFrame(block, columns=index, copy=False), typed
    frame = pd.DataFrame(
        {c: (a.array if isinstance(a, pd.Series) else a) for c, a in arrays.items()},
        columns=index,
    )
    return frame, typed


@functools.lru_cache(maxsize=256)
def _index(names: tuple[str, ...]) -> pd.Index:
    """The column index of a signature, built once (frames share an immutable Index)."""
    import pandas as pd

    return pd.Index(names)


def validated(
    frame: pd.DataFrame | None,
    signature: Signature | None,
    problems: list[str],
    *,
    allow_extra_columns: bool,
) -> pd.DataFrame:
    """The frame checked against the signature, or RequestInvalid listing every problem."""
    problems = list(problems)
    if frame is not None and signature is None and len(frame.columns) == 0:
        problems.append("the rows have no columns")
    if frame is not None and signature is not None:
        known = set(signature.input_names)
        extra = [str(c) for c in frame.columns if c not in known]
        if extra and not allow_extra_columns:
            shown = ", ".join(repr(c) for c in extra[: MAX_LISTED * 2])
            problems.append(
                f"unknown column(s) {shown}: the model's signature takes {signature.input_names}"
            )
        try:
            frame = signature.validate(frame)
        except SignatureMismatch as exc:
            problems.extend(exc.problems)
        except InvalidInput as exc:
            problems.append(str(exc))
    if problems:
        raise RequestInvalid(problems)
    assert frame is not None  # a parser that built no frame has reported why
    return frame


def json_list(values: Any) -> list[Any]:
    """Predictions as JSON values: numpy scalars unwrapped, NaN and infinities as null.

    JSON has no NaN; Starlette's encoder refuses it, which would turn one odd prediction
    into a 500, so a non-finite number is sent as null.
    """
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind == "f":
        out: list[Any] = array.astype(object).tolist()

        def clean(v: Any) -> Any:
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v if v is None or math.isfinite(v) else None

        return [clean(v) for v in out]
    if array.dtype.kind == "M":
        return [None if v is None else v.isoformat() for v in array.astype(object).tolist()]
    if array.dtype.kind in "biu":
        result: list[Any] = array.tolist()
        return result
    return [_plain(v) for v in array.tolist()]


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def columns_from_instances(
    instances: Any,
    signature: Signature | None,
    what: str,
    max_rows: int,
    problems: list[str],
) -> tuple[dict[str, list[Any]] | None, int]:
    """Columns from the usual JSON shapes of rows, with their row count.

    Accepts a list of records, a list of rows (lists of values, by position onto the
    signature's columns), a list of values for a one-column model, a dict of columns
    (lists) or one record (a dict of values).
    """
    if isinstance(instances, Mapping):
        if not instances:
            problems.append(f"{what} is an empty object: give at least one column")
            return None, 0
        if all(scalar_problem(v) is None for v in instances.values()):
            instances = [instances]  # one record
        else:
            n = equal_lengths(instances, what, problems)
            if n is None:
                return None, 0
            too_many = row_count_problem(n, max_rows)
            if too_many:
                problems.append(too_many)
                return None, 0
            columns = {str(k): list(v) for k, v in instances.items()}
            ok = all(
                [cell_problems(f"{what}, column {k!r}", v, problems) for k, v in columns.items()]
            )
            return (columns if ok else None), n
    if not isinstance(instances, list):
        problems.append(
            f"{what} must be a list of rows or an object of columns, got {type(instances).__name__}"
        )
        return None, 0
    too_many = row_count_problem(len(instances), max_rows)
    if too_many:
        problems.append(too_many)
        return None, 0
    if all(isinstance(r, Mapping) for r in instances):
        return columns_from_records(instances, what, problems), len(instances)
    if all(isinstance(r, list) for r in instances):
        names = signature.input_names if signature is not None else None
        return columns_from_rows(instances, names, what, problems), len(instances)
    if signature is not None and len(signature.inputs) == 1:
        name = signature.input_names[0]
        ok = cell_problems(f"{what}, column {name!r}", instances, problems)
        return ({name: list(instances)} if ok else None), len(instances)
    kinds = sorted({type(r).__name__ for r in instances})
    problems.append(
        f"{what} must be a list of records (objects of column to value) or of rows (lists "
        f"of values); got items of type {kinds}"
    )
    return None, 0
