"""Errors the HTTP server answers before the app runs (414, 431, 400...), in the API's JSON error shape."""

from __future__ import annotations

import logging

import orjson

logger = logging.getLogger(__name__)

# What each status means here, for the message ("URI Too Long: the request line is too long").
EXPLAIN = {
    400: "the request could not be parsed",
    408: "the request took too long to arrive",
    414: "the request line (method, path and query) is too long",
    417: "the expectation in the Expect header cannot be met",
    431: "the request headers are too many or too long",
    501: "the server does not implement this",
    505: "the HTTP version is not supported",
}


def error_body(status: int, reason: str, detail: str = "") -> bytes:
    """{"error": "..."}: the shape of every error body of the API (see jsonio.error_response)."""
    message = reason
    explain = detail or EXPLAIN.get(status, "")
    if explain:
        message = f"{reason}: {explain}"
    return orjson.dumps({"error": message})


def raw_response(status: int, reason: str, detail: str = "") -> bytes:
    """A whole HTTP/1.1 response (status line, headers, JSON body) that closes the connection."""
    body = error_body(status, reason, detail)
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1", "replace") + body
