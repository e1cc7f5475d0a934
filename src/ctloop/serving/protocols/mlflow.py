"""MLflow's scoring protocol: ``POST /invocations`` as ``mlflow models serve`` takes it.

The body holds exactly one of ``dataframe_split`` (``{"columns": […], "data": [[…]]}``),
``dataframe_records`` (a list of records), ``instances`` or ``inputs`` (records, rows, or
an object of columns), plus optional ``params``. The response is
``{"predictions": […]}``: for a classifier the predicted labels, as MLflow's scoring
server returns a scikit-learn pyfunc's ``predict``. Errors use MLflow's body,
``{"error_code": "BAD_REQUEST", "message": "…"}``, which the MLflow client reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctloop.serving.protocols._common import (
    ParsedRequest,
    RequestInvalid,
    columns_from_instances,
    columns_from_rows,
    row_count_problem,
    validated_frame,
)
from ctloop.serving.protocols.kserve_v1 import format_kserve_v1

if TYPE_CHECKING:
    from ctloop.models.signature import Signature

__all__ = ["FORMATS", "error_body", "format_mlflow", "parse_mlflow"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_mlflow(
    body: Any,
    signature: Signature | None,
    *,
    max_rows: int,
    allow_extra_columns: bool = False,
) -> ParsedRequest:
    """An ``/invocations`` JSON body as validated rows.

    Raises:
        RequestInvalid: listing every problem with the body and its values.
    """
    if not isinstance(body, Mapping):
        raise RequestInvalid([f"the body must be a JSON object with one of {list(FORMATS)}"])
    problems: list[str] = []
    given = [k for k in FORMATS if k in body]
    unknown = sorted(str(k) for k in body if k not in FORMATS and k != "params")
    if unknown:
        problems.append(f"unknown key(s) {unknown}: the body takes one of {list(FORMATS)}")
    if len(given) != 1:
        problems.append(
            f"the body must hold exactly one of {list(FORMATS)}; it holds {given or 'none'}"
        )
        raise RequestInvalid(problems)
    params = body.get("params")
    if params is not None and not isinstance(params, Mapping):
        problems.append(f"'params' must be an object, got {params!r}")
        params = None
    key = given[0]
    value = body[key]
    columns: dict[str, list[Any]] | None = None
    n = 0
    if key == "dataframe_split":
        columns, n = _split(value, signature, max_rows, problems)
    elif key == "dataframe_records":
        if isinstance(value, list) and all(isinstance(r, Mapping) for r in value):
            columns, n = columns_from_instances(
                value, signature, "'dataframe_records'", max_rows, problems
            )
        else:
            problems.append("'dataframe_records' must be a list of records (objects)")
    else:
        columns, n = columns_from_instances(value, signature, f"'{key}'", max_rows, problems)
    frame, values = validated_frame(
        columns, n, signature, problems, allow_extra_columns=allow_extra_columns
    )
    return ParsedRequest(frame, "mlflow", parameters=dict(params or {}), values=values)


def _split(
    value: Any, signature: Signature | None, max_rows: int, problems: list[str]
) -> tuple[dict[str, list[Any]] | None, int]:
    what = "'dataframe_split'"
    if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
        problems.append(f'{what} must be an object with "columns" and "data" (a list of rows)')
        return None, 0
    rows = value["data"]
    names = value.get("columns")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(c, str) for c in names)
    ):
        problems.append(f"{what}: 'columns' must be a list of column names")
        return None, 0
    if names is not None:
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            problems.append(f"{what}: columns named more than once: {dupes}")
            return None, 0
    too_many = row_count_problem(len(rows), max_rows)
    if too_many:
        problems.append(too_many)
        return None, 0
    if names is None:  # pandas' split orient without columns: by position
        names = signature.input_names if signature is not None else None
    elif not names:
        problems.append(f"{what}: 'columns' is empty")
        return None, 0
    return columns_from_rows(rows, names, what, problems), len(rows)


# MLflow's scoring server answers a pyfunc exactly as KServe V1 does: {"predictions": […]}
format_mlflow = format_kserve_v1


def error_body(error: BaseException | str) -> dict[str, str]:
    """MLflow's error body: ``{"error_code": "BAD_REQUEST", "message": "…"}``."""
    return {"error_code": "BAD_REQUEST", "message": str(error)}
