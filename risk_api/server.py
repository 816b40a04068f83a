"""gunicorn workers whose own answers (414, 431, 400 for a bad request line or framing) use the API's JSON shape."""

from __future__ import annotations

import logging

import orjson
from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

logger = logging.getLogger(__name__)

# Dotted paths for gunicorn's --worker-class.
THREAD_WORKER = "risk_api.server.JsonErrorThreadWorker"
SYNC_WORKER = "risk_api.server.JsonErrorSyncWorker"


def error_response(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying {"error": {"field": "$", "reason": message}}."""
    body = orjson.dumps({"error": {"field": "$", "reason": message or reason}})
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_json_error(sock, status_int, reason, mesg) -> None:
    util.write_nonblock(sock, error_response(int(status_int), str(reason), str(mesg)))


class _JsonErrors:
    def init_process(self):
        # gunicorn writes its own errors with gunicorn.util.write_error (HTML); this process serves only this app.
        util.write_error = write_json_error
        super().init_process()


class JsonErrorThreadWorker(_JsonErrors, ThreadWorker):
    """gthread worker (threads > 1, keeps connections alive) with JSON errors."""


class JsonErrorSyncWorker(_JsonErrors, SyncWorker):
    """sync worker (one thread) with JSON errors."""
