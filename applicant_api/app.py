"""The applicant API's Flask app factory: `gunicorn 'applicant_api.app:create_app()'`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

import pymysql
from flask import Flask
from werkzeug.exceptions import HTTPException

from applicant_api import api, auth, health, openapi
from applicant_api.jsonio import error_response
from applicant_api.pool import ConnectionPool, PoolTimeout
from applicant_api.settings import Settings, load_settings
from credit_core import http_metrics

logger = logging.getLogger(__name__)

RETRY_AFTER = {"Retry-After": "1"}
SERVICE = "applicant_api"          # the service label of its metrics


@dataclass
class AppState:
    """What the blueprints share: settings, the connection pool, the cached spec."""
    settings: Settings
    pool: ConnectionPool
    spec_bytes: bytes | None = None


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` keys are setting names as environment variables (MYSQL_URL,
    APPLICANT_API_TOKEN, APPLICANT_API_AUTH, APPLICANT_API_MAX_BODY, ...) or Flask config keys.

    Refuses to build (ConfigError) when no token is set unless APPLICANT_API_AUTH=off.
    """
    if test_config is not None and not isinstance(test_config, Mapping):
        raise TypeError(f"test_config must be a mapping, got {type(test_config).__name__}")
    settings = load_settings(test_config)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body, JSON_SORT_KEYS=False)
    if test_config:
        app.config.update({k: v for k, v in test_config.items() if k.isupper() and not k.startswith(
            ("MYSQL_", "APPLICANT_API_"))})
    pool = ConnectionPool(settings.mysql_url, size=settings.pool_size, timeout=settings.pool_timeout,
                          lock_wait=settings.lock_wait)
    app.extensions["applicant_api"] = AppState(settings=settings, pool=pool)

    http_metrics.install(app, SERVICE)   # GET /metrics, open like /health
    auth.install(app, settings.token, enabled=settings.auth)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api.bp)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        headers = dict(exc.get_response().headers)
        headers.pop("Content-Type", None)
        headers.pop("Content-Length", None)
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
            headers["Connection"] = "close"   # the body is left unread
        return error_response(exc.code or 500, message, headers=headers)

    @app.errorhandler(PoolTimeout)
    def pool_busy(exc: PoolTimeout):
        logger.warning("%s", exc)
        return error_response(503, "the database is busy; retry later", headers=RETRY_AFTER)

    @app.errorhandler(pymysql.err.OperationalError)
    @app.errorhandler(pymysql.err.InterfaceError)
    def database_down(exc: Exception):
        logger.warning("database error: %s", exc)
        return error_response(503, "the database is unavailable; retry later", headers=RETRY_AFTER)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unhandled error")
        return error_response(500, "internal error")
