"""The Open Inference Protocol (KServe V2) over REST: infer requests, responses and metadata.

A request gives its rows in one of two ways:

* **columns** (MLServer's ``"parameters": {"content_type": "pd"}``, and the default when
  the inputs are named after signature columns): one input per column, shape ``[n]`` or
  ``[n, 1]``;
* **one 2-D tensor** (``"content_type": "np"``, or a single input of shape ``[n, k]`` that
  is not a signature column): its ``k`` columns map by position onto the signature's.

Tensor data may be flat (row-major) or nested, as the spec allows. Binary tensor data (the
``binary_data_size`` extension) is refused with a message saying to send JSON: with
``tritonclient.http``, ``set_data_from_numpy(array, binary_data=False)``.

The response has ``predict`` (shape ``[n]``) and, for classifiers, ``predict_proba``
(``FP64``, shape ``[n, n_classes]``, flat row-major, columns in ``classes`` order), or
only the outputs the request names. Outputs are always JSON: a requested output's
``binary_data: true`` is ignored, which ``tritonclient`` reads just the same.

Data types, signature → OIP (``model_metadata``): boolean → ``BOOL``, integer → ``INT64``,
float → ``FP64``, string → ``BYTES``, category → the type of its categories (``BYTES`` for
strings), datetime → ``BYTES`` holding ISO 8601 text, object → ``BYTES``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctloop.serving.protocols._common import (
    MAX_LISTED,
    ParsedRequest,
    RequestInvalid,
    json_list,
    row_count_problem,
    validated_frame,
)

if TYPE_CHECKING:
    from ctloop.models.signature import ColumnSpec, Signature

__all__ = [
    "DATATYPES",
    "OUTPUT_PREDICT",
    "OUTPUT_PROBA",
    "datatype_of",
    "format_oip",
    "model_metadata",
    "parse_oip",
    "server_metadata",
]

OUTPUT_PREDICT = "predict"
OUTPUT_PROBA = "predict_proba"

_INT_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**63 - 1),  # pandas holds what we parse as int64
}
DATATYPES = ("BOOL", *_INT_RANGES, "FP16", "FP32", "FP64", "BYTES")
_CONTENT_TYPES = ("pd", "np")


# --- parsing --------------------------------------------------------------------------------


def parse_oip(
    body: Any,
    signature: Signature | None,
    *,
    max_rows: int,
    allow_extra_columns: bool = False,
) -> ParsedRequest:
    """An OIP ``POST …/infer`` body as validated rows.

    Raises:
        RequestInvalid: listing every problem with the body and with its values against
            the signature (unknown data types, shape/data mismatches, unknown or duplicate
            input names, the wrong number of columns, too many rows, wrong types, nulls…).
    """
    if not isinstance(body, Mapping):
        raise RequestInvalid(
            [f"the body must be a JSON object with 'inputs', got {type(body).__name__}"]
        )
    problems: list[str] = []
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        problems.append(f"'id' must be a string, got {request_id!r}")
        request_id = None
    parameters = _parameters(body.get("parameters"), "the request's 'parameters'", problems)
    content_type = parameters.get("content_type")
    if content_type is not None and content_type not in _CONTENT_TYPES:
        problems.append(
            f"unsupported content_type {content_type!r}: use 'pd' (one input per column) "
            "or 'np' (one 2-D tensor)"
        )
        content_type = None
    outputs = _requested_outputs(body.get("outputs"), signature, problems)

    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        problems.append("'inputs' must be a non-empty list of tensors")
        raise RequestInvalid(problems)
    tensors = [t for i, raw in enumerate(raw_inputs) if (t := _tensor(raw, i, problems))]
    names = [t.name for t in tensors]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"inputs named more than once: {dupes}")
    if len(tensors) != len(raw_inputs) or dupes:
        raise RequestInvalid(problems)

    known = signature.input_names if signature is not None else []
    single = tensors[0] if len(tensors) == 1 else None
    as_tensor = content_type == "np" or (
        content_type is None
        and single is not None
        and len(single.shape) == 2
        and (single.name not in known or single.shape[1] != 1)
    )
    if as_tensor:
        columns, n = _tensor_columns(tensors, signature, max_rows, problems)
    else:
        columns, n = _column_inputs(tensors, max_rows, problems)
    frame, values = validated_frame(
        columns, n, signature, problems, allow_extra_columns=allow_extra_columns
    )
    return ParsedRequest(frame, "oip", request_id, outputs, parameters, values=values)


class _Tensor:
    __slots__ = ("data", "datatype", "name", "shape")

    def __init__(self, name: str, datatype: str, shape: list[int], data: list[Any]) -> None:
        self.name, self.datatype, self.shape, self.data = name, datatype, shape, data


def _parameters(raw: Any, what: str, problems: list[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(f"{what} must be an object, got {raw!r}")
        return {}
    return dict(raw)


def _requested_outputs(
    raw: Any, signature: Signature | None, problems: list[str]
) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
        isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in raw
    ):
        problems.append("'outputs' must be a list of objects with a 'name'")
        return None
    names = [str(o["name"]) for o in raw]
    available = _output_names(signature)
    unknown = [n for n in names if n not in available]
    if unknown:
        problems.append(f"unknown output(s) {unknown}: this model has {list(available)}")
    return names


def _output_names(signature: Signature | None) -> tuple[str, ...]:
    output = signature.output if signature is not None else None
    if output is None:  # unknown until the model answers: allow both, the formatter checks
        return (OUTPUT_PREDICT, OUTPUT_PROBA)
    if output.kind == "probabilities":
        return (OUTPUT_PREDICT, OUTPUT_PROBA)
    return (OUTPUT_PREDICT,)


def _tensor(raw: Any, index: int, problems: list[str]) -> _Tensor | None:
    if not isinstance(raw, Mapping):
        problems.append(f"input {index} must be an object with name, shape, datatype and data")
        return None
    name = raw.get("name")
    where = f"input {name!r}" if isinstance(name, str) else f"input {index}"
    before = len(problems)
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: 'name' must be a non-empty string")
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        problems.append(f"{where}: unknown datatype {datatype!r}; use one of {list(DATATYPES)}")
    shape = raw.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        problems.append(f"{where}: 'shape' must be a list of non-negative integers, got {shape!r}")
        shape = None
    elif len(shape) > 2:
        problems.append(f"{where}: shape {shape} has more than 2 dimensions")
        shape = None
    params = _parameters(raw.get("parameters"), f"{where}: 'parameters'", problems)
    if "binary_data_size" in params:
        problems.append(
            f"{where}: binary tensor data is not supported; send the data as JSON "
            "(tritonclient: set_data_from_numpy(array, binary_data=False))"
        )
    data = raw.get("data")
    flat: list[Any] | None = None
    if not isinstance(data, list):
        if "binary_data_size" not in params:
            problems.append(f"{where}: 'data' must be a list")
    else:
        flat = _flatten(data)
        if flat is None:
            problems.append(f"{where}: 'data' is nested too deeply or unevenly")
    if len(problems) > before:
        return None
    assert isinstance(name, str) and isinstance(datatype, str)
    assert shape is not None and flat is not None
    if math.prod(shape) != len(flat):
        problems.append(
            f"{where}: shape {shape} holds {math.prod(shape)} values but 'data' has {len(flat)}"
        )
        return None
    type_problem = _type_problem(datatype, flat)
    if type_problem:
        problems.append(f"{where}: {type_problem}")
        return None
    return _Tensor(name, datatype, shape, flat)


def _flatten(data: list[Any], depth: int = 0) -> list[Any] | None:
    """Row-major values of flat or nested data (at most 2 levels), or None."""
    if list not in set(map(type, data)):  # one pass in C: the common, flat case
        return data
    if depth >= 1 or not all(isinstance(v, list) for v in data):
        return None
    out: list[Any] = []
    for row in data:
        inner = _flatten(row, depth + 1)
        if inner is None:
            return None
        out.extend(inner)
    return out


_NONE = type(None)
_FAST_KINDS = {"BOOL": {bool, _NONE}, "BYTES": {str, _NONE}}


def _type_problem(datatype: str, values: Sequence[Any]) -> str | None:
    """Why the values do not fit the datatype (null is allowed: the signature decides)."""
    kinds = set(map(type, values))  # first a check in C that settles the common cases
    if datatype.startswith("FP") and kinds <= {float, int, _NONE}:
        return None
    if datatype in _FAST_KINDS and kinds <= _FAST_KINDS[datatype]:
        return None
    if datatype in _INT_RANGES and kinds == {int}:
        low, high = _INT_RANGES[datatype]
        if low <= min(values) and max(values) <= high:
            return None
    if datatype == "BOOL":
        ok = [v is None or isinstance(v, bool) for v in values]
        want = "true or false"
    elif datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        ok = [
            v is None or (isinstance(v, int) and not isinstance(v, bool) and low <= v <= high)
            for v in values
        ]
        want = f"integers in [{low}, {high}]"
    elif datatype.startswith("FP"):
        ok = [v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values]
        want = "numbers"
    else:  # BYTES: text in JSON
        ok = [v is None or isinstance(v, str) for v in values]
        want = "strings"
    bad = [i for i, fine in enumerate(ok) if not fine]
    if not bad:
        return None
    shown = ", ".join(repr(values[i]) for i in bad[:3])
    return f"datatype {datatype} takes {want}; got {shown} (at positions {bad[:MAX_LISTED]})"


def _column_inputs(
    tensors: list[_Tensor], max_rows: int, problems: list[str]
) -> tuple[dict[str, list[Any]] | None, int]:
    columns: dict[str, list[Any]] = {}
    lengths: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) == 2 and t.shape[1] != 1:
            problems.append(
                f"input {t.name!r}: shape {t.shape} is not one column; give each column as "
                "its own input of shape [n] or [n, 1], or send a single 2-D tensor"
            )
            continue
        columns[t.name] = t.data
        lengths[t.name] = t.shape[0]
    if len(columns) != len(tensors):
        return None, 0
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in list(lengths.items())[: MAX_LISTED * 2])
        problems.append(f"inputs have different numbers of rows ({shown})")
        return None, 0
    n = next(iter(lengths.values()))
    too_many = row_count_problem(n, max_rows)
    if too_many:
        problems.append(too_many)
        return None, 0
    return columns, n


def _tensor_columns(
    tensors: list[_Tensor], signature: Signature | None, max_rows: int, problems: list[str]
) -> tuple[dict[str, list[Any]] | None, int]:
    if len(tensors) != 1 or len(tensors[0].shape) != 2:
        shapes = [t.shape for t in tensors]
        problems.append(
            f"content_type 'np' takes a single 2-D tensor of shape [rows, columns]; got "
            f"{len(tensors)} input(s) with shapes {shapes}"
        )
        return None, 0
    t = tensors[0]
    n, k = t.shape
    names = signature.input_names if signature is not None else [f"x{j}" for j in range(k)]
    if k != len(names):
        problems.append(
            f"input {t.name!r}: a 2-D tensor of shape {t.shape} has {k} columns but the "
            f"model's signature has {len(names)} ({names}), taken in that order"
        )
        return None, 0
    too_many = row_count_problem(n, max_rows)
    if too_many:
        problems.append(too_many)
        return None, 0
    return {name: t.data[j::k] for j, name in enumerate(names)}, n


# --- responses ------------------------------------------------------------------------------


def datatype_of(values: Any) -> str:
    """The OIP datatype for an array of predictions (``BYTES`` for text and anything else)."""
    import numpy as np

    dtype = np.asarray(values).dtype
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8):
        return f"{'INT' if dtype.kind == 'i' else 'UINT'}{dtype.itemsize * 8}"
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return f"FP{dtype.itemsize * 8}"
    return "BYTES"


def format_oip(
    parsed: ParsedRequest,
    predictions: Any,
    probabilities: Any | None,
    *,
    model_name: str,
    model_version: str | int,
    classes: Sequence[Any] | None,
    prediction_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The OIP infer response: ``predict`` and, with probabilities, ``predict_proba``.

    ``prediction_ids`` go into the response's ``parameters`` (as one comma-separated
    string: OIP parameter values are scalars) so feedback can be joined to them.

    Raises:
        RequestInvalid: the request asked for ``predict_proba`` of a model without it.
    """
    import numpy as np

    preds = np.asarray(predictions)
    available: dict[str, dict[str, Any]] = {
        OUTPUT_PREDICT: {
            "name": OUTPUT_PREDICT,
            "shape": [int(preds.shape[0])],
            "datatype": datatype_of(preds),
            "data": json_list(preds if preds.dtype.kind in "biuf" else preds.astype(str)),
        }
    }
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        available[OUTPUT_PROBA] = {
            "name": OUTPUT_PROBA,
            "shape": [int(s) for s in proba.shape],
            "datatype": "FP64",
            "data": json_list(proba.reshape(-1)),
        }
    wanted = parsed.outputs_requested or list(available)
    missing = [name for name in wanted if name not in available]
    if missing:
        raise RequestInvalid([f"output(s) {missing} are not available: {list(available)} are"])
    body: dict[str, Any] = {
        "model_name": model_name,
        "model_version": str(model_version),
        "outputs": [available[name] for name in wanted],
    }
    if parsed.id is not None:
        body["id"] = parsed.id
    if prediction_ids is not None:
        body["parameters"] = {"prediction_ids": ",".join(prediction_ids)}
    return body


def model_metadata(
    name: str,
    versions: Sequence[str | int],
    signature: Signature | None,
    is_classifier: bool,
    classes: Sequence[Any] | None,
    platform: str = "ctloop",
) -> dict[str, Any]:
    """``GET /v2/models/{name}[/versions/{v}]``: inputs from the signature, and outputs."""
    inputs = (
        [
            {"name": c.name, "datatype": _datatype_of_spec(c), "shape": [-1]}
            for c in signature.inputs
        ]
        if signature is not None
        else []
    )
    output = signature.output if signature is not None else None
    if classes:
        predict_type = _datatype_of_values(list(classes))
    elif output is not None and output.kind == "regression":
        predict_type = "FP64"
    else:
        predict_type = "BYTES" if output is not None or is_classifier else "FP64"
    outputs: list[dict[str, Any]] = [
        {"name": OUTPUT_PREDICT, "datatype": predict_type, "shape": [-1]}
    ]
    if is_classifier:
        width = len(classes) if classes else -1
        outputs.append({"name": OUTPUT_PROBA, "datatype": "FP64", "shape": [-1, width]})
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": platform,
        "inputs": inputs,
        "outputs": outputs,
    }


def server_metadata() -> dict[str, Any]:
    """``GET /v2``: the server's name, version and protocol extensions (none)."""
    from ctloop import __version__

    return {"name": "ctloop", "version": __version__, "extensions": []}


def _datatype_of_spec(spec: ColumnSpec) -> str:
    if spec.dtype == "boolean":
        return "BOOL"
    if spec.dtype == "integer":
        return "INT64"
    if spec.dtype == "float":
        return "FP64"
    if spec.dtype == "category" and spec.categories:
        return _datatype_of_values(spec.categories)
    return "BYTES"  # string, category of strings, datetime as ISO 8601, object


def _datatype_of_values(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
