"""POST /api/v1/score: one applicant object, or {"applicants": [...]}; one result per applicant, in order."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request

from risk_api.auth import require_token
from risk_api.body import BodyTooLarge, exact_ids, parse_json, read_limited
from risk_api.http import json_error, json_response
from risk_api.metrics import record_scores

logger = logging.getLogger(__name__)

bp = Blueprint("score", __name__)


@bp.post("/api/v1/score")
@require_token("api")
def score():
    cfg = current_app.config
    limit = cfg["MAX_CONTENT_LENGTH"]
    try:
        # Counted as it is read, so a chunked (or otherwise framed) body meets the same limit as a declared length.
        data = read_limited(request.stream, limit)
    except BodyTooLarge as exc:
        return json_error(413, "$", str(exc))
    coding = request.headers.get("Transfer-Encoding", "").strip().lower()
    if coding not in ("", "chunked"):
        return json_error(400, "Transfer-Encoding", f"{coding!r} is not supported: send a Content-Length or chunked")
    if not data.strip():
        return json_error(400, "$", "body is empty: send an applicant object or {\"applicants\": [...]}")
    try:
        body = parse_json(data)
        exact_ids(data, body)
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
        results = model.score_records(applicants, threshold, cfg["OUT_OF_RANGE"])
        record_scores(results, model.version)
        return json_response({"model_version": model.version,
                              "threshold": model.threshold if threshold is None else threshold,
                              "results": results})
    result = model.score_records([body], threshold, cfg["OUT_OF_RANGE"])[0]
    record_scores((result,), model.version)
    return json_response(result, 400 if "error" in result else 200)
