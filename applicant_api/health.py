"""GET /health: the process answers and the database runs SELECT 1 (no auth)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app

from applicant_api import repository
from applicant_api.jsonio import json_response

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    try:
        with current_app.extensions["applicant_api"].pool.connection() as conn:
            repository.ping(conn)
    except Exception as exc:  # any failure to run SELECT 1 means "not healthy"
        logger.warning("health check: database unavailable: %s", exc)
        return json_response({"status": "unavailable", "database": f"error: {type(exc).__name__}"}, 503,
                             {"Retry-After": "1"})
    return json_response({"status": "ok", "database": "ok"})
