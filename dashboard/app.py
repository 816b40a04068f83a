"""The dashboard's Flask app factory: `gunicorn --workers 1 --threads 8 'dashboard.app:create_app()'`."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask
from werkzeug.exceptions import HTTPException

from dashboard import api, pages
from dashboard.http import add_security_headers, json_error
from dashboard.settings import DashboardSettings, load_settings
from dashboard.state import EXTENSION, DashboardState

logger = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` keys are environment variable names (DASHBOARD_TOKEN, DASHBOARD_TARGETS,
    KAFKA_BROKER, HBASE_PORT...) or Flask config keys; ``START_COLLECTORS`` False keeps the background
    collectors from starting (tests of the routes alone).

    Refuses to build (ConfigError) without DASHBOARD_TOKEN, or when Chart.js is not installed. Starts nothing:
    the collectors start with the first request the process serves.
    """
    if test_config is not None and not isinstance(test_config, Mapping):
        raise TypeError(f"test_config must be a mapping, got {type(test_config).__name__}")
    settings: DashboardSettings = load_settings(test_config)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body, MAX_FORM_MEMORY_SIZE=settings.max_body,
                      MAX_FORM_PARTS=10, START_COLLECTORS=True, TEMPLATES_AUTO_RELOAD=False)
    if test_config:
        names = {d.env for d in DashboardSettings.describe()}
        app.config.update({k: v for k, v in test_config.items() if k.isupper() and k not in names})
    app.extensions[EXTENSION] = DashboardState.build(settings)

    @app.before_request
    def start_collectors():
        if app.config["START_COLLECTORS"]:
            app.extensions[EXTENSION].collectors.ensure_started()

    app.after_request(add_security_headers)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"the request body is larger than {settings.max_body} bytes"
        return json_error(exc.code or 500, message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        logger.exception("unhandled error")
        return json_error(500, "internal error")

    return app
