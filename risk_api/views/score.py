"""POST /api/v1/score: one applicant object, or {"applicants": [...]}; one result per applicant, in order."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from flask import Blueprint, current_app, request

from risk_api.auth import require_token
from risk_api.http import json_error, json_response

logger = logging.getLogger(__name__)

bp = Blueprint("score", __name__)


def _parse(data: bytes) -> Any:
    """orjson first (fast); the stdlib parser only to let NaN / Infinity through, to be rejected per applicant."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        first = exc
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError(f"body is not valid JSON: {first}") from None


@bp.post("/api/v1/score")
@require_token("api")
def score():
    cfg = current_app.config
    data = request.get_data(cache=False)          # over MAX_CONTENT_LENGTH: 413 from the error handler
    if not data.strip():
        return json_error(400, "$", "body is empty: send an applicant object or {\"applicants\": [...]}")
    try:
        body = _parse(data)
    except ValueError as exc:
        return json_error(400, "$", str(exc))
    if not isinstance(body, dict):
        return json_error(400, "$", f"body must be an applicant object or {{\"applicants\": [...]}}, "
                                    f"got a JSON {type(body).__name__}")
    model = current_app.extensions["risk_model_store"].current()   # one model for the whole request
    threshold = cfg["THRESHOLD"]
    if "applicants" in body:
        applicants = body["applicants"]
        if not isinstance(applicants, list):
            return json_error(400, "applicants", f"must be a list of applicant objects, "
                                                 f"got {type(applicants).__name__}")
        if not applicants:
            return json_error(400, "applicants", "no applicants: the list is empty")
        if len(applicants) > cfg["MAX_BATCH"]:
            return json_error(400, "applicants", f"at most {cfg['MAX_BATCH']} applicants per request, "
                                                 f"got {len(applicants)}")
        results = model.score_records(applicants, threshold)
        return json_response({"model_version": model.version,
                              "threshold": model.threshold if threshold is None else threshold,
                              "results": results})
    result = model.score_records([body], threshold)[0]
    return json_response(result, 400 if "error" in result else 200)
