"""Request bodies read with a hard size limit, whatever the transfer encoding (chunked bodies have no length)."""

from __future__ import annotations

import logging

from flask import Request, Response

from applicant_api.jsonio import error_response
from credit_core.http_body import read_body

logger = logging.getLogger(__name__)


def request_body(request: Request, limit: int) -> bytes | None:
    """The request's body if it is at most ``limit`` bytes, else None (the caller answers 413)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    environ = request.environ
    # A server that ends the input itself (chunked bodies; gunicorn always) says so with wsgi.input_terminated:
    # read its stream directly and count here (werkzeug's own wrapper would refuse a body of exactly the limit).
    stream = environ["wsgi.input"] if environ.get("wsgi.input_terminated") else request.stream
    return read_body(stream, limit)


def body_too_large(limit: int) -> Response:
    """413 in the API's error shape; the connection closes (the rest of the body is never read)."""
    logger.warning("refused a request body larger than %d bytes", limit)
    return error_response(413, f"the request body is larger than {limit} bytes", headers={"Connection": "close"})
