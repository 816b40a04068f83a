"""JSON responses and errors shared by the blueprints (orjson, one error shape: {"error": {"field", "reason"}})."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from flask import Response

logger = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200) -> Response:
    try:
        data = orjson.dumps(body)
    except orjson.JSONEncodeError:
        # Something orjson cannot write (an integer beyond 64 bits, a lone surrogate) got into an answer: the
        # stdlib writes both (ASCII-escaped), so the caller still gets its answer rather than a 500.
        logger.warning("orjson could not serialise a response; used the stdlib encoder")
        data = json.dumps(body, ensure_ascii=True, allow_nan=False).encode()
    return Response(data, status=status, mimetype="application/json")


def json_error(status: int, field: str, reason: str) -> Response:
    return json_response({"error": {"field": field, "reason": reason}}, status)
