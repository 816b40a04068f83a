"""Serve a WSGI app over real HTTP from a background thread (tests, benchmarks, local tools)."""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import make_server

logger = logging.getLogger(__name__)


class ServerThread:
    """``with ServerThread(app) as srv: requests.get(srv.url + "/health")``; threaded werkzeug server."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        if not callable(app):
            raise TypeError("app must be a WSGI callable")
        self._server = make_server(host, port, app, threaded=True)
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
