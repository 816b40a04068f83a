"""Fixtures for the risk API tests: seeded synthetic LoanStats files, a trained model, a live HTTP server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from risk_api.server import error_response

from credit_core import synthetic
from credit_core.lendingclub import iter_records
from risk_api import artifact as artifacts
from risk_api import training

BIG_ROWS = 120_000          # the issue asks for >= 100,000 synthetic rows for the AUC test
SMALL_ROWS = 3_000
TOKEN = "test-token-" + "x" * 16
ADMIN_TOKEN = "admin-token-" + "y" * 16


@pytest.fixture(scope="session")
def risk_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("risk_api")


@pytest.fixture(scope="session")
def big_file(risk_data_dir) -> Path:
    path = risk_data_dir / "synthetic_big.csv"
    synthetic.generate(path, BIG_ROWS, seed=11)
    return path


@pytest.fixture(scope="session")
def small_file(risk_data_dir) -> Path:
    path = risk_data_dir / "synthetic_small.csv"
    synthetic.generate(path, SMALL_ROWS, seed=12, dirty=0.02)
    return path


@pytest.fixture(scope="session")
def trained(big_file) -> training.TrainResult:
    """One training run on the big file, shared by the tests (about ten seconds)."""
    return training.train(big_file)


@pytest.fixture(scope="session")
def model_path(risk_data_dir, trained) -> Path:
    return artifacts.save(trained.artifact, risk_data_dir / "trained.json")


@pytest.fixture(scope="session")
def clean_records(small_file) -> list[dict]:
    """Cleaned records exactly as the importer and the topology produce them (every field, true_pd too)."""
    return [rec for _, rec, _ in iter_records(small_file) if rec is not None]


class JsonErrorHandler(WSGIRequestHandler):
    """werkzeug's request handler, answering its own errors (request line or headers too long) in the API's JSON
    shape, as the gunicorn workers of risk_api.server do."""

    def send_error(self, code, message=None, explain=None):
        self.close_connection = True
        try:
            reason = self.responses.get(code, ("Error",))[0]
            self.wfile.write(error_response(code, reason, message or reason))
        except OSError:
            pass


class LiveServer:
    """A real HTTP server (werkzeug, threaded) around an app, on a free port chosen by the OS."""

    def __init__(self, app):
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=JsonErrorHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.session = requests.Session()

    def request(self, method: str, path: str, token: str | None = TOKEN, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        self.session.close()
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def serve():
    """serve(model_path, **config) -> a LiveServer running create_app(config); stopped at teardown.

    Defaults: auth on with TOKEN (admin: ADMIN_TOKEN), no file watch, the model's own threshold.
    """
    from risk_api.app import create_app
    servers: list[LiveServer] = []

    def start(model_path: Path, **overrides) -> LiveServer:
        cfg = {"MODEL_PATH": str(model_path), "AUTH": True, "API_TOKEN": TOKEN, "ADMIN_TOKEN": ADMIN_TOKEN,
               "WATCH_SECONDS": 0.0, "THRESHOLD": None}
        cfg.update(overrides)
        server = LiveServer(create_app(cfg))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def tokens() -> dict[str, str]:
    return {"api": TOKEN, "admin": ADMIN_TOKEN}
