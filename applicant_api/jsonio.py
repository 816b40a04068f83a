"""JSON in and out of the applicant API through orjson (Decimal and datetime included)."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from typing import Any

import orjson
from flask import Response

logger = logging.getLogger(__name__)

JSON_MIMETYPE = "application/json"


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return raw_json_response(dumps(value), status, headers)


def raw_json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A response around an already encoded JSON body."""
    return Response(body, status=status, mimetype=JSON_MIMETYPE, headers=headers)


def error_response(status: int, message: str, errors: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """The one error shape: {"error": message, "errors": [{"index"?, "field", "reason"}], ...}."""
    body: dict[str, Any] = {"error": message}
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return json_response(body, status, headers)
