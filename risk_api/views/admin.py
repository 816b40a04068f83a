"""Admin routes, registered only when enabled (settings.admin_routes_enabled), bearer RISK_ADMIN_TOKEN only:
POST /api/v1/admin/reload (take up a new artifact now) and GET /api/v1/admin/status (reload details)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app

from risk_api.artifact import ArtifactError
from risk_api.auth import require_token
from risk_api.http import json_error, json_response

logger = logging.getLogger(__name__)

bp = Blueprint("admin", __name__)


@bp.post("/api/v1/admin/reload")
@require_token("admin")
def reload():
    store = current_app.extensions["risk_model_store"]
    try:
        previous, model = store.reload()
    except ArtifactError as exc:
        return json_error(422, "artifact", f"{exc}; still serving {store.current().version}")
    return json_response({"model_version": model.version, "previous_version": previous.version,
                          "changed": model.version != previous.version, "loaded_at": store.loaded_at})


@bp.get("/api/v1/admin/status")
@require_token("admin")
def status():
    """Where the model comes from and why the last reload failed (file paths: not for the public /health)."""
    store = current_app.extensions["risk_model_store"]
    return json_response({**store.status(), "model_path": store.path})
