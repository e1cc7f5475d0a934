"""The inference protocols: parse a JSON body into validated rows, format the answer.

Pure functions, no web framework: ``parse_<protocol>(body, signature, max_rows=…)`` gives a
:class:`ParsedRequest` or raises :class:`RequestInvalid` listing every problem, and
``format_<protocol>(parsed, predictions, probabilities, …)`` gives the response body.
Protocols: the Open Inference Protocol (:mod:`.oip`), KServe V1 (:mod:`.kserve_v1`),
MLflow scoring (:mod:`.mlflow`) and ctloop's plain ``/predict`` (:mod:`.plain`).
"""

from __future__ import annotations

from ctloop.serving.protocols._common import (
    ParsedRequest,
    RequestInvalid,
    check_body_size,
    error_body,
    error_status,
)
from ctloop.serving.protocols.kserve_v1 import format_kserve_v1, parse_kserve_v1
from ctloop.serving.protocols.mlflow import format_mlflow, parse_mlflow
from ctloop.serving.protocols.oip import format_oip, model_metadata, parse_oip, server_metadata
from ctloop.serving.protocols.plain import format_plain, parse_plain

__all__ = [
    "ParsedRequest",
    "RequestInvalid",
    "check_body_size",
    "error_body",
    "error_status",
    "format_kserve_v1",
    "format_mlflow",
    "format_oip",
    "format_plain",
    "model_metadata",
    "parse_kserve_v1",
    "parse_mlflow",
    "parse_oip",
    "parse_plain",
    "server_metadata",
]
