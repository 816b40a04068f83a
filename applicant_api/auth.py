"""Bearer-token authentication on every route except the open ones (/health, /metrics)."""

from __future__ import annotations

import hmac
import logging

from flask import Flask, request

from applicant_api.jsonio import error_response

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health", "/metrics"})   # /metrics: counts only, for Prometheus
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="applicant_api"'}


def install(app: Flask, token: str | None, *, enabled: bool) -> None:
    """Reject requests without ``Authorization: Bearer <token>`` (401) unless auth is disabled."""
    if not enabled:
        return
    if not token:
        raise ValueError("a token is required when auth is enabled")
    expected = token.encode()

    @app.before_request
    def require_token():
        if request.path in OPEN_PATHS:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, supplied = header.partition(" ")
        if scheme.lower() != "bearer" or not supplied:
            return error_response(401, "missing bearer token: send 'Authorization: Bearer <token>'",
                                  headers=CHALLENGE)
        if not hmac.compare_digest(supplied.strip().encode(), expected):
            logger.warning("rejected a request with a wrong token from %s", request.remote_addr)
            return error_response(401, "invalid bearer token", headers=CHALLENGE)
        return None
