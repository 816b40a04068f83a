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
    return json_response({"status": "ok", "model_version": model.version, "loaded_at": store.loaded_at,
                          "last_reload_error": store.last_error})


@bp.get("/openapi.json")
def openapi():
    return json_response(spec())
