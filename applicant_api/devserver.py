"""Serve a WSGI app over real HTTP from a background thread (tests, benchmarks, local tools)."""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from applicant_api.httperrors import error_body

logger = logging.getLogger(__name__)


class JsonErrorRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with the errors it answers before the app (414, 431, 400) as JSON, not HTML."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        reason = self.responses.get(code, ("Error", ""))[0]
        self.log_error("code %d, message %s", code, message or reason)
        body = error_body(code, reason)
        self.send_response(code, reason)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        if getattr(self, "command", "") != "HEAD":
            self.wfile.write(body)


class ServerThread:
    """``with ServerThread(app) as srv: requests.get(srv.url + "/health")``; threaded werkzeug server."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        if not callable(app):
            raise TypeError("app must be a WSGI callable")
        self._server = make_server(host, port, app, threaded=True, request_handler=JsonErrorRequestHandler)
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-{self.port}",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ServerThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
