"""The plain protocol: ``POST /predict`` with ``{"instances": [{…record…}, …]}``.

The body is ``{"instances": [records]}``, ``{"instances": {one record}}`` or one record
on its own. The response carries an id per prediction, for joining feedback later::

    {"predictions": [...], "prediction_ids": [...], "model_version": "3",
     "probabilities": [[...], ...], "classes": [...]}    # the last two for classifiers

Errors are ``{"error": "…", "problems": ["…", …]}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctloop.errors import InvalidInput
from ctloop.serving.protocols._common import (
    ParsedRequest,
    RequestInvalid,
    columns_from_instances,
    json_list,
    validated_frame,
)

if TYPE_CHECKING:
    from ctloop.models.signature import Signature

__all__ = ["error_body", "format_plain", "parse_plain"]


def parse_plain(
    body: Any,
    signature: Signature | None,
    *,
    max_rows: int,
    allow_extra_columns: bool = False,
) -> ParsedRequest:
    """A ``/predict`` body as validated rows.

    Raises:
        RequestInvalid: listing every problem with the body and its values.
    """
    if not isinstance(body, Mapping) or not body:
        raise RequestInvalid(
            ['the body must be a JSON object: {"instances": [{...}, ...]} or one record']
        )
    problems: list[str] = []
    instances = body.get("instances", body)
    what = "'instances'" if "instances" in body else "the record"
    if isinstance(instances, list) and not all(isinstance(r, Mapping) for r in instances):
        problems.append(f"{what} must be a list of records (objects of column to value)")
        raise RequestInvalid(problems)
    if isinstance(instances, Mapping) and not all(
        v is None or isinstance(v, str | int | float | bool) for v in instances.values()
    ):
        problems.append(f"{what} must be one record: an object of column to a single value")
        raise RequestInvalid(problems)
    columns, n = columns_from_instances(instances, signature, what, max_rows, problems)
    frame, values = validated_frame(
        columns, n, signature, problems, allow_extra_columns=allow_extra_columns
    )
    return ParsedRequest(frame, "plain", values=values)


def format_plain(
    parsed: ParsedRequest,
    predictions: Any,
    probabilities: Any | None,
    *,
    model_name: str,
    model_version: str | int,
    classes: Sequence[Any] | None,
    prediction_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Predictions with an id each (new random ones when none are given) and the version."""
    preds = json_list(predictions)
    ids = list(prediction_ids) if prediction_ids is not None else [uuid.uuid4().hex for _ in preds]
    if len(ids) != len(preds):
        raise InvalidInput(f"{len(ids)} prediction ids for {len(preds)} predictions")
    body: dict[str, Any] = {
        "predictions": preds,
        "prediction_ids": ids,
        "model_version": str(model_version),
    }
    if probabilities is not None:
        body["probabilities"] = json_list(probabilities)
        body["classes"] = list(classes) if classes is not None else None
    return body


def error_body(error: BaseException | str) -> dict[str, Any]:
    """``{"error": "…", "problems": […]}``; ``problems`` lists each issue of a bad request."""
    problems = getattr(error, "problems", None)
    return {"error": str(error), "problems": list(problems) if problems else [str(error)]}
