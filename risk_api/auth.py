"""Bearer-token auth for the scoring and admin routes; tokens come only from the environment."""

from __future__ import annotations

import functools
import hmac
import logging
from typing import Callable

from flask import current_app, request

from risk_api.http import json_error

logger = logging.getLogger(__name__)


def _presented() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_token(kind: str = "api") -> Callable:
    """Decorator: 401 unless the request carries ``Authorization: Bearer <token>`` for ``kind`` (api or admin)."""
    if kind not in ("api", "admin"):
        raise ValueError(f"kind must be 'api' or 'admin', got {kind!r}")

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args, **kwargs):
            cfg = current_app.config
            # Admin routes always take their own token (they exist only when it is set; RISK_API_AUTH=off
            # relaxes the scoring routes only).
            if kind == "admin" or cfg["AUTH"]:
                expected = cfg.get("ADMIN_TOKEN") if kind == "admin" else cfg["API_TOKEN"]
                token = _presented()
                if token is None or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
                    resp = json_error(401, "Authorization", "a valid bearer token is required")
                    resp.headers["WWW-Authenticate"] = 'Bearer realm="risk_api"'
                    return resp
            return view(*args, **kwargs)
        return checked
    return wrap
