"""JSON responses and errors shared by the blueprints (orjson, one error shape: {"error": {"field", "reason"}})."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Response

logger = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def json_error(status: int, field: str, reason: str) -> Response:
    return json_response({"error": {"field": field, "reason": reason}}, status)
