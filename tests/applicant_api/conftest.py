"""Fixtures for the applicant_api tests: the API over HTTP on the session MariaDB (``db_url``: tests/conftest.py)."""

from __future__ import annotations

import pytest

from applicant_api import db


@pytest.fixture
def db_conn(db_url):
    """A pymysql connection (autocommit) to the fresh database of ``db_url``; closed after the test."""
    conn = db.connect(db_url, autocommit=True)
    yield conn
    conn.close()


# --- applicant API over real HTTP (werkzeug server thread) ------------------------------------

import secrets  # noqa: E402

import requests  # noqa: E402

from applicant_api.app import create_app  # noqa: E402
from applicant_api.devserver import ServerThread  # noqa: E402
from tests.factories import clean_applicant  # noqa: E402

API_TOKEN = "test-" + secrets.token_urlsafe(16)


class ApiSession(requests.Session):
    """requests.Session with a base URL: ``api.get("/health")``."""

    def __init__(self, base_url: str, token: str | None = API_TOKEN):
        super().__init__()
        self.base_url = base_url
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.base_url + url, *args, **kwargs)


@pytest.fixture(scope="module")
def api_server(mariadb):
    """The applicant API (auth on, token API_TOKEN) on a free port, over the session MariaDB."""
    app = create_app({"MYSQL_URL": mariadb.url, "APPLICANT_API_TOKEN": API_TOKEN})
    with ServerThread(app) as srv:
        yield srv
    app.extensions["applicant_api"].pool.close()


@pytest.fixture
def api(api_server, db_url):
    """An authenticated HTTP session to ``api_server``, over a fresh, empty applications table."""
    with ApiSession(api_server.url) as session:
        yield session


def post_applicants(api: ApiSession, records: list[dict], chunk: int = 1000) -> None:
    """Store records through the API in chunks; fail the test on any non-201."""
    for start in range(0, len(records), chunk):
        resp = api.post("/api/v1/applicants", json=records[start:start + chunk])
        assert resp.status_code == 201, resp.text


@pytest.fixture
def applicant_factory():
    """``applicant_factory(i, **overrides)``: a valid application with id ``i`` (canonical JSON values):
    tests.factories.clean_applicant."""
    return clean_applicant


@pytest.fixture
def store(api):
    """``store(records)``: POST them through the API in chunks of 1,000, asserting 201."""
    return lambda records, chunk=1000: post_applicants(api, records, chunk)
