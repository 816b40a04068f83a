"""Small real HTTP servers standing in for a worker or an API in the dashboard's route tests.

GET /metrics serves a real prometheus-client registry's exposition, GET /health whatever the test sets."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class MetricsServer:
    """Serves ``text()`` on /metrics and ``health`` (status, body) on /health, on 127.0.0.1:<free port>."""

    def __init__(self, text: Callable[[], str], health: tuple[int, dict] | None = None):
        self.text = text
        self.health = health
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path == "/metrics":
                    self._send(200, outer.text().encode(), "text/plain; version=0.0.4; charset=utf-8")
                elif self.path == "/health" and outer.health is not None:
                    code, body = outer.health
                    self._send(code, json.dumps(body).encode(), "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def __enter__(self) -> "MetricsServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
