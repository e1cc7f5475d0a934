"""What a model takes and returns: column names, types and nullability, and its output kind.

A :class:`Signature` is inferred from an input example when a model is logged and stored in
the package manifest. Before every prediction, :meth:`Signature.validate` checks the input
against it and converts what can be converted without losing information (an integer column
given for a float, ISO strings for timestamps, strings for a categorical column), so a model
never sees data shaped differently from what it was trained on. Every problem is reported
at once, not the first one only.

Column types are logical, not pandas dtypes, so they read the same in JSON, the CLI and the
server: ``boolean``, ``integer``, ``float``, ``string``, ``category`` (with its categories),
``datetime`` (with its time zone, if any) and ``object`` (anything; not checked).

Columns the signature does not name are dropped without an error, as MLflow does: callers
commonly send whole rows with ids, timestamps or labels next to the features. When the input
has problems, the error names those extra columns too, because a misspelt column shows up as
one missing and one extra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DTYPES",
    "OUTPUT_KINDS",
    "ColumnSpec",
    "OutputSpec",
    "Signature",
    "SignatureMismatch",
    "infer_signature",
    "to_frame",
]

DTYPES = ("boolean", "integer", "float", "string", "category", "datetime", "object")
OUTPUT_KINDS = ("class_label", "probabilities", "regression")
MAX_EXAMPLES = 3  # offending values quoted per problem


class SignatureMismatch(InvalidInput):
    """The input does not fit the model's signature; ``problems`` lists each issue."""

    def __init__(self, problems: list[str], extra_columns: Sequence[str] = ()) -> None:
        lines = "\n".join(f"- {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        message = f"the input does not match the model's signature ({len(problems)} {noun}):\n"
        message += lines
        if extra_columns:
            message += "\n(columns not in the signature, ignored: " + ", ".join(
                repr(c) for c in extra_columns
            )
            message += ")"
        super().__init__(message)
        self.problems = problems
        self.extra_columns = list(extra_columns)

    def __reduce__(self) -> tuple[type[SignatureMismatch], tuple[list[str], list[str]]]:
        # crosses process boundaries (pipeline workers, Ray) like every ctloop error
        return (type(self), (self.problems, self.extra_columns))


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: name, logical type, whether nulls are allowed."""

    name: str
    dtype: str
    nullable: bool
    categories: list[Any] | None = None  # for dtype "category"
    timezone: str | None = None  # for a time-zone-aware "datetime"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.dtype == "category":
            out["categories"] = self.categories
        if self.dtype == "datetime" and self.timezone is not None:
            out["timezone"] = self.timezone
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        try:
            name, dtype, nullable = data["name"], data["dtype"], data["nullable"]
        except (KeyError, TypeError):
            raise InvalidInput(
                f"invalid signature column {data!r}: it needs name, dtype and nullable"
            ) from None
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"invalid signature column name {name!r}")
        if dtype not in DTYPES:
            raise InvalidInput(
                f"invalid dtype {dtype!r} for column {name!r}: use one of {', '.join(DTYPES)}"
            )
        if not isinstance(nullable, bool):
            raise InvalidInput(f"invalid nullable {nullable!r} for column {name!r}")
        categories = data.get("categories")
        if dtype == "category" and not isinstance(categories, list):
            raise InvalidInput(f"category column {name!r} has no list of categories")
        timezone = data.get("timezone")
        if timezone is not None and not isinstance(timezone, str):
            raise InvalidInput(f"invalid timezone {timezone!r} for column {name!r}")
        return cls(name, dtype, nullable, categories if dtype == "category" else None, timezone)

    def describe(self) -> str:
        """``float, nullable`` / ``category of 3`` … for messages and the CLI."""
        text = self.dtype
        if self.dtype == "category" and self.categories is not None:
            text += f" of {len(self.categories)}"
        if self.timezone:
            text += f" ({self.timezone})"
        return text + (", nullable" if self.nullable else "")


@dataclass(frozen=True)
class OutputSpec:
    """What ``predict`` gives: class labels, probabilities over ``classes``, or a value."""

    kind: str
    classes: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": self.classes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSpec:
        kind = data.get("kind") if isinstance(data, Mapping) else None
        if kind not in OUTPUT_KINDS:
            raise InvalidInput(
                f"invalid signature output {data!r}: kind must be one of {', '.join(OUTPUT_KINDS)}"
            )
        classes = data.get("classes")
        if classes is not None and not isinstance(classes, list):
            raise InvalidInput(f"invalid signature output classes {classes!r}: expected a list")
        return cls(kind, classes)


@dataclass(frozen=True)
class Signature:
    """The columns a model takes (in order) and the kind of output it gives.

    ``array_input`` marks a model trained on a 2-D array rather than a DataFrame: its
    columns are named ``x0``, ``x1`` … and the validated frame is handed to it as an array.
    """

    inputs: list[ColumnSpec]
    output: OutputSpec | None = None
    array_input: bool = False
    _by_name: dict[str, ColumnSpec] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        names = [c.name for c in self.inputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(f"signature has duplicate columns: {dupes}")
        self._by_name.update({c.name: c for c in self.inputs})

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "inputs": [c.to_dict() for c in self.inputs],
            "output": self.output.to_dict() if self.output is not None else None,
        }
        if self.array_input:
            out["array_input"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), list):
            raise InvalidInput(f"invalid signature {data!r}: expected {{'inputs': [...], ...}}")
        output = data.get("output")
        return cls(
            inputs=[ColumnSpec.from_dict(c) for c in data["inputs"]],
            output=OutputSpec.from_dict(output) if output is not None else None,
            array_input=bool(data.get("array_input", False)),
        )

    def validate(self, data: Any) -> pd.DataFrame:
        """The input as a DataFrame with exactly the signature's columns, in order.

        Accepts a DataFrame, a list of records (dicts), a dict of columns (or one record as a
        dict of scalars), or, for array models, a 2-D array. Safe conversions are applied
        (int → float, integral floats → int, ISO strings → timestamps, strings →
        categories); values outside a categorical column's known categories become missing,
        as scikit-learn's encoders and HistGradientBoosting treat unknown categories.

        Raises:
            SignatureMismatch: (an :class:`~ctloop.errors.InvalidInput`) listing every
                missing column, wrong type and null in a non-nullable column.
        """
        import pandas as pd

        frame = to_frame(data, self)
        problems: list[str] = []
        out: dict[str, pd.Series] = {}
        for spec in self.inputs:
            if spec.name not in frame.columns:
                problems.append(f"missing column {spec.name!r} ({spec.describe()})")
                continue
            column = frame[spec.name]
            if isinstance(column, pd.DataFrame):
                problems.append(f"column {spec.name!r} appears more than once")
                continue
            converted, problem = _convert(column, spec)
            if problem:
                problems.append(f"column {spec.name!r}: {problem}")
            if not spec.nullable:
                nulls = column.isna()
                if nulls.any():
                    rows = [str(r) for r in column.index[nulls][:MAX_EXAMPLES]]
                    more = ", …" if int(nulls.sum()) > MAX_EXAMPLES else ""
                    problems.append(
                        f"column {spec.name!r}: {int(nulls.sum())} missing value(s) (rows "
                        f"{', '.join(rows)}{more}) but the model's signature does not allow "
                        "nulls in it (its input example had none there)"
                    )
            if converted is not None:
                out[spec.name] = converted
        if problems:
            extra = [str(c) for c in frame.columns if c not in self._by_name]
            raise SignatureMismatch(problems, extra)
        return pd.DataFrame(out, index=frame.index)[self.input_names]


# --- conversion -----------------------------------------------------------------------------


def to_frame(data: Any, signature: Signature | None = None) -> pd.DataFrame:
    """A DataFrame from a DataFrame, records, a dict of columns, or a 2-D array."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InvalidInput(f"expected a 2-D array of rows, got an array of shape {data.shape}")
        names = [f"x{i}" for i in range(data.shape[1])]
        if signature is not None and not signature.array_input:
            raise InvalidInput(
                "this model was logged with named columns; pass a DataFrame, records or a "
                f"dict of columns with {signature.input_names}, not an array"
            )
        if signature is not None and data.shape[1] != len(signature.inputs):
            raise SignatureMismatch(
                [f"expected {len(signature.inputs)} columns, got an array with {data.shape[1]}"]
            )
        return pd.DataFrame(data, columns=names)
    if isinstance(data, Mapping):
        if not data:
            raise InvalidInput("the input is an empty dict: pass at least one column or record")
        if all(_is_scalar(v) for v in data.values()):
            return pd.DataFrame([dict(data)])
        try:
            return pd.DataFrame(dict(data))
        except ValueError as exc:
            raise InvalidInput(f"cannot read the input as a dict of columns: {exc}") from None
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidInput("the input has no rows")
        if all(isinstance(r, Mapping) for r in data):
            return pd.DataFrame(list(data))
        raise InvalidInput(
            "a list input must be a list of records (dicts of column to value); got "
            f"items of type {sorted({type(r).__name__ for r in data})}"
        )
    raise InvalidInput(
        f"cannot use a {type(data).__name__} as model input: pass a pandas DataFrame, a list "
        "of records or a dict of columns"
    )


def _is_scalar(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, str | bytes | int | float | bool)
        or (hasattr(value, "item") and getattr(value, "ndim", 1) == 0)
    )


def _kind(column: pd.Series) -> str:
    """The logical type of a column's values (``empty`` when all are missing)."""
    import pandas as pd
    from pandas.api import types as pt

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pt.is_bool_dtype(dtype):
        return "boolean"
    if pt.is_integer_dtype(dtype):
        return "integer"
    if pt.is_float_dtype(dtype):
        return "float"
    if pt.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pt.is_string_dtype(dtype) or pt.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(column, skipna=True)
        return {
            "string": "string",
            "boolean": "boolean",
            "integer": "integer",
            "floating": "float",
            "mixed-integer-float": "float",
            "decimal": "float",
            "datetime": "datetime",
            "datetime64": "datetime",
            "date": "datetime",
            "empty": "empty",
            "categorical": "category",
        }.get(inferred, "object")
    return "object"


class _Got:
    """``got <kind> values (<examples>)``, built only when formatted into a problem."""

    __slots__ = ("column", "kind")

    def __init__(self, column: pd.Series, kind: str) -> None:
        self.column = column
        self.kind = kind

    def __str__(self) -> str:
        if self.kind == "empty":
            return ""
        return f"got {self.kind} values ({_sample(self.column)})"


def _sample(column: pd.Series) -> str:
    values = column.dropna().unique()[:MAX_EXAMPLES]
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values)


def _convert(column: pd.Series, spec: ColumnSpec) -> tuple[pd.Series | None, str | None]:
    """The column converted to the spec's type, or (None, why not)."""
    import numpy as np
    import pandas as pd

    kind = _kind(column)
    want = spec.dtype
    got = _Got(column, kind)  # described only when a problem is reported

    if want == "object":
        return column, None
    if kind == "empty":  # all missing: any type fits; nullability is checked separately
        if want == "float" or (want == "integer" and spec.nullable):
            return column.astype("float64"), None
        if want == "category":
            return pd.Series(
                pd.Categorical([None] * len(column), categories=spec.categories),
                index=column.index,
            ), None
        return column, None

    if want == "float":
        if kind in ("integer", "float"):
            return column.astype("float64"), None
        return None, f"expected float, {got}"

    if want == "integer":
        if kind == "integer":
            if column.isna().any():
                return column.astype("float64"), None
            return column.astype("int64"), None
        if kind == "float":
            values = column.astype("float64")
            present = values.dropna()
            if not np.isfinite(present).all() or not (present == np.floor(present)).all():
                bad = present[~np.isfinite(present) | (present != np.floor(present))]
                return None, f"expected integer, got non-integral values ({_sample(bad)})"
            return (values if values.isna().any() else values.astype("int64")), None
        return None, f"expected integer, {got}"

    if want == "boolean":
        if kind == "boolean":
            return (column if column.isna().any() else column.astype(bool)), None
        return None, f"expected boolean, {got}"

    if want == "string":
        if kind == "string":
            return column, None
        if kind == "category" and _kind(column.astype(object)) in ("string", "empty"):
            return column.astype(object), None
        return None, f"expected string, {got}"

    if want == "category":
        categories = list(spec.categories or [])
        values = column.astype(object) if kind == "category" else column
        value_kind = _kind(values) if kind == "category" else kind
        cat_kind = _kind(pd.Series(categories, dtype=object)) if categories else "empty"
        if value_kind != cat_kind and not (
            {value_kind, cat_kind} <= {"integer", "float"} or value_kind == "empty"
        ):
            shown = ", ".join(repr(c) for c in categories[:5]) + (
                ", …" if len(categories) > 5 else ""
            )
            return None, f"expected a category (one of {shown}), {got}"
        dtype = pd.CategoricalDtype(categories=categories)
        values = values.where(values.isin(categories))  # unknown categories → missing
        return pd.Series(pd.Categorical(values, dtype=dtype), index=column.index), None

    if want == "datetime":
        return _convert_datetime(column, spec, kind, got)

    raise InvalidInput(f"unknown signature dtype {want!r}")  # pragma: no cover - from_dict checks


def _convert_datetime(
    column: pd.Series, spec: ColumnSpec, kind: str, got: object
) -> tuple[pd.Series | None, str | None]:
    import pandas as pd

    if kind == "string":
        try:
            parsed = pd.to_datetime(column, format="ISO8601")
        except (ValueError, TypeError) as exc:
            return None, f"expected ISO 8601 timestamps, got values that do not parse ({exc})"
        column, kind = parsed, "datetime"
    if kind != "datetime":
        return None, f"expected datetime, {got}"
    if column.dtype == object:
        try:
            column = pd.to_datetime(column)
        except (ValueError, TypeError) as exc:
            return None, f"expected datetime, got mixed values ({exc})"
    tz = getattr(column.dtype, "tz", None)
    if spec.timezone is not None:
        if tz is None:
            return None, (
                f"timestamps have no time zone; the model expects {spec.timezone} "
                "(give an offset, e.g. 2026-01-01T00:00:00Z)"
            )
        return column.dt.tz_convert(spec.timezone), None
    if tz is not None:
        return None, "timestamps have a time zone; the model was trained on naive timestamps"
    return column, None


# --- inference ------------------------------------------------------------------------------


def infer_signature(input_example: Any, model: Any = None) -> Signature:
    """The signature of ``model`` from an example of its input.

    Nullability comes from the example: pass a representative frame (the training frame
    is best) so that columns with missing values are marked nullable. The output kind comes
    from the model: ``probabilities`` (with the class names) when it has ``predict_proba``
    and ``classes_``, ``class_label`` for other classifiers, ``regression`` otherwise.
    """
    import numpy as np

    array_input = isinstance(input_example, np.ndarray)
    frame = to_frame(input_example)
    if len(frame.columns) == 0:
        raise InvalidInput("the input example has no columns")
    inputs = [_infer_column(str(name), frame[name]) for name in frame.columns]
    return Signature(inputs=inputs, output=infer_output(model), array_input=array_input)


def _infer_column(name: str, column: Any) -> ColumnSpec:
    import pandas as pd

    if isinstance(column, pd.DataFrame):
        raise InvalidInput(f"the input example has more than one column named {name!r}")
    kind = _kind(column)
    nullable = bool(column.isna().any())
    if kind == "empty":
        kind = "object"
    if kind == "category":
        categories = [_json_scalar(c) for c in column.cat.categories]
        return ColumnSpec(name, "category", nullable, categories=categories)
    if kind == "datetime":
        tz = getattr(column.dtype, "tz", None)
        return ColumnSpec(name, "datetime", nullable, timezone=str(tz) if tz is not None else None)
    return ColumnSpec(name, kind, nullable)


def infer_output(model: Any) -> OutputSpec | None:
    """The output kind of a model (None without a model)."""
    if model is None:
        return None
    try:
        classes = getattr(model, "classes_", None)
    except Exception:  # a property of an unfitted or exotic model; treat as absent
        classes = None
    class_list = [_json_scalar(c) for c in classes] if classes is not None else None
    if class_list is not None and hasattr(model, "predict_proba"):
        return OutputSpec("probabilities", class_list)
    if class_list is not None or _is_classifier(model):
        return OutputSpec("class_label", class_list)
    return OutputSpec("regression", None)


def _is_classifier(model: Any) -> bool:
    try:
        from sklearn.base import is_classifier

        return bool(is_classifier(model))
    except Exception:  # not a scikit-learn object
        return False


def _json_scalar(value: Any) -> Any:
    """A class name or category as a plain JSON value."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
