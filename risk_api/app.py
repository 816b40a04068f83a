"""The risk API's Flask app factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from risk_api import settings
from risk_api.http import json_error
from risk_api.store import ModelStore

logger = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment (settings.from_env) overlaid with ``test_config``.

    Refuses to start (ValueError) without RISK_API_TOKEN unless RISK_API_AUTH=off, and without a loadable model.
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
    if cfg.get("THRESHOLD") is not None and not 0.0 <= float(cfg["THRESHOLD"]) <= 1.0:
        raise settings.SettingsError(f"THRESHOLD must be in [0, 1], got {cfg['THRESHOLD']!r}")
    store = cfg.get("MODEL_STORE") or ModelStore(cfg["MODEL_PATH"], cfg["WATCH_SECONDS"])
    app.extensions["risk_model_store"] = store
    logger.info("risk API serving model %s from %s (auth %s)", store.current().version, store.path,
                "on" if cfg["AUTH"] else "OFF")

    from risk_api.views import meta, model, score
    for bp in (score.bp, model.bp, meta.bp):
        app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return json_error(413, "$", f"body is larger than {cfg['MAX_CONTENT_LENGTH']} bytes")
        return json_error(exc.code or 500, "$", exc.description or exc.name)

    @app.errorhandler(Exception)
    def crash(exc: Exception):
        logger.exception("unhandled error")
        return json_error(500, "$", "internal error")

    return app
