"""GET /health and GET /openapi.json (no auth: they reveal no applicant data)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app

from risk_api.http import json_response
from risk_api.openapi import spec

logger = logging.getLogger(__name__)

bp = Blueprint("meta", __name__)


@bp.get("/health")
def health():
    store = current_app.extensions["risk_model_store"]
    model = store.current()
    # Public: whether the served model is the file's (ok) or the file could not be loaded (degraded, the old
    # model keeps serving) and the version; why and where are for GET /api/v1/admin/status.
    return json_response({"status": "ok" if store.last_error is None else "degraded",
                          "model_version": model.version})


@bp.get("/openapi.json")
def openapi():
    cfg = current_app.config
    return json_response(spec(cfg["MAX_BATCH"], cfg["MAX_CONTENT_LENGTH"]))
