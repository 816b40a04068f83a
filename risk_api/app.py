"""The risk API's Flask app factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from credit_core import http_metrics
from risk_api import settings
from risk_api.http import json_error
from risk_api.metrics import ModelReference
from risk_api.store import ModelStore

logger = logging.getLogger(__name__)

SERVICE = "risk_api"          # the service label of its metrics


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment (settings.from_env) overlaid with ``test_config``.

    Refuses to start (ValueError) without RISK_API_TOKEN unless RISK_API_AUTH=off, with admin routes switched on
    and no RISK_ADMIN_TOKEN, and without a loadable model.
    """
    if test_config is not None and not isinstance(test_config, dict):
        raise TypeError(f"test_config must be a dict, got {type(test_config).__name__}")
    app = Flask(__name__)
    app.config.update(settings.from_env())
    app.config.update(test_config or {})
    app.json.sort_keys = False
    cfg = app.config
    if cfg["AUTH"] and not cfg.get("API_TOKEN"):
        raise settings.SettingsError("RISK_API_TOKEN is not set: set a token, or RISK_API_AUTH=off to run "
                                     "without authentication")
    admin = settings.admin_routes_enabled(cfg)
    if cfg.get("THRESHOLD") is not None and not 0.0 <= float(cfg["THRESHOLD"]) <= 1.0:
        raise settings.SettingsError(f"THRESHOLD must be in [0, 1], got {cfg['THRESHOLD']!r}")
    if cfg.get("OUT_OF_RANGE", settings.DEFAULT_OUT_OF_RANGE) not in ("flag", "decline"):
        raise settings.SettingsError(f"RISK_OUT_OF_RANGE must be flag or decline, got {cfg['OUT_OF_RANGE']!r}")
    store = cfg.get("MODEL_STORE") or ModelStore(cfg["MODEL_PATH"], cfg["WATCH_SECONDS"])
    app.extensions["risk_model_store"] = store
    logger.info("risk API serving model %s from %s (auth %s, admin routes %s)", store.current().version,
                store.path, "on" if cfg["AUTH"] else "OFF", "on" if admin else "off")

    from risk_api.views import admin as admin_views
    from risk_api.views import meta, model, score
    for bp in (score.bp, model.bp, meta.bp) + ((admin_views.bp,) if admin else ()):
        app.register_blueprint(bp)
    # GET /metrics, open like /health: request counts and durations, scores and decisions, the model's reference.
    reference = ModelReference(store)
    http_metrics.install(app, SERVICE, collectors=lambda: (reference,))

    @app.before_request
    def request_limits():
        # The same limits as gunicorn's defaults, so every server in front answers them alike (as JSON).
        line = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        if len(request.method) + len(line) + len(" HTTP/1.1") + 1 > settings.MAX_REQUEST_LINE:
            return json_error(414, "$", f"request line is longer than {settings.MAX_REQUEST_LINE} bytes")
        if len(request.headers) > settings.MAX_HEADER_FIELDS:
            return json_error(431, "$", f"more than {settings.MAX_HEADER_FIELDS} header fields")
        for name, value in request.headers.items():
            if len(name) + len(value) + 2 > settings.MAX_HEADER_FIELD_BYTES:
                return json_error(431, name, f"header field is longer than {settings.MAX_HEADER_FIELD_BYTES} bytes")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return json_error(413, "$", f"body is larger than {cfg['MAX_CONTENT_LENGTH']} bytes")
        resp = json_error(exc.code or 500, "$", exc.description or exc.name)
        for name, value in exc.get_headers():
            if name.lower() == "allow":           # 405 names the methods the route takes
                resp.headers["Allow"] = value
        return resp

    @app.errorhandler(Exception)
    def crash(exc: Exception):
        logger.exception("unhandled error")
        return json_error(500, "$", "internal error")

    return app
