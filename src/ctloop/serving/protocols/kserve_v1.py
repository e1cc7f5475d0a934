"""KServe V1: ``POST /v1/models/{name}:predict`` with ``{"instances": […]}``.

Instances are records (objects of column to value) or rows (lists of values, by position
onto the signature's columns); ``inputs`` is accepted as a synonym, as KServe does. The
response is ``{"predictions": […]}``, one per instance; errors are ``{"error": "…"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctloop.serving.protocols._common import (
    ParsedRequest,
    RequestInvalid,
    columns_from_instances,
    json_list,
    validated_frame,
)

if TYPE_CHECKING:
    from ctloop.models.signature import Signature

__all__ = ["format_kserve_v1", "parse_kserve_v1"]


def parse_kserve_v1(
    body: Any,
    signature: Signature | None,
    *,
    max_rows: int,
    allow_extra_columns: bool = False,
) -> ParsedRequest:
    """A V1 predict body as validated rows.

    Raises:
        RequestInvalid: listing every problem with the body and its values.
    """
    if not isinstance(body, Mapping) or not ({"instances", "inputs"} & set(body)):
        raise RequestInvalid(['the body must be a JSON object with "instances": [...]'])
    problems: list[str] = []
    if "instances" in body and "inputs" in body:
        problems.append('give "instances" or "inputs", not both')
        raise RequestInvalid(problems)
    key = "instances" if "instances" in body else "inputs"
    columns, n = columns_from_instances(body[key], signature, f"'{key}'", max_rows, problems)
    frame, values = validated_frame(
        columns, n, signature, problems, allow_extra_columns=allow_extra_columns
    )
    return ParsedRequest(frame, "kserve_v1", values=values)


def format_kserve_v1(
    parsed: ParsedRequest,
    predictions: Any,
    probabilities: Any | None,
    *,
    model_name: str,
    model_version: str | int,
    classes: Sequence[Any] | None,
    prediction_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``{"predictions": […]}``: what ``predict`` returned, one value per instance."""
    return {"predictions": json_list(predictions)}
