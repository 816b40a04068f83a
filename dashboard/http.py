"""HTTP helpers: JSON responses through orjson, the security headers every response carries, the auth check."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Response, request

from dashboard import auth
from dashboard.state import state

logger = logging.getLogger(__name__)

# Everything from this origin only: no CDN, no inline script or style, no framing, forms post here only.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",      # not no-referrer: that makes a browser send "Origin: null" on posts
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dashboard"'}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message, "status": status}, status, headers)


def authorized() -> bool:
    """The request carries the bearer token or a valid session cookie."""
    token = state().settings.token
    return auth.valid_bearer(token, request.headers.get("Authorization")) or auth.valid_session(
        token, request.cookies.get(auth.COOKIE), time.time())


def same_origin() -> bool:
    """A state-changing form post comes from this origin (Origin, else Sec-Fetch-Site, when the browser says)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null":
        mine = urlsplit(request.host_url)
        theirs = urlsplit(origin)
        return (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc)
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def add_security_headers(resp: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(name, value)
    if request.path.startswith("/static/") or request.path.startswith("/vendor/"):
        resp.headers.setdefault("Cache-Control", "private, max-age=300")
    else:
        resp.headers["Cache-Control"] = "no-store"
    return resp
