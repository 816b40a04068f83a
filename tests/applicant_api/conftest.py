"""Fixtures for the applicant_api tests: a clean `applications` table in the session MariaDB."""

from __future__ import annotations

import pytest

from applicant_api import db, schema


@pytest.fixture
def db_url(mariadb) -> str:
    """MYSQL_URL of the session MariaDB with an empty, freshly created `applications` table."""
    schema.reset_db(mariadb.url)
    return mariadb.url


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

API_TOKEN = "test-" + secrets.token_urlsafe(16)
GRADE_CYCLE = "ABCDEFG"


def make_applicant(i: int, **overrides) -> dict:
    """A valid application (canonical JSON values) with id ``i``; deterministic."""
    grade = GRADE_CYCLE[i % 7]
    loan = 1000.0 + (i % 1000) * 25
    rec = {
        "id": i, "member_id": 10_000_000 + i, "loan_amnt": loan, "funded_amnt": loan, "funded_amnt_inv": loan,
        "term": 36 if i % 3 else 60, "int_rate": round(5.5 + (i % 7) * 3.1, 2), "installment": round(loan / 30, 2),
        "grade": grade, "sub_grade": f"{grade}{i % 5 + 1}", "emp_title": f"Clerk {i}", "emp_length": i % 11,
        "home_ownership": "RENT", "annual_inc": 40_000.0 + (i % 97) * 1000, "verification_status": "Verified",
        "issue_d": "2016-03", "purpose": "credit_card", "addr_state": "NY", "dti": round((i % 400) / 10, 1),
        "delinq_2yrs": i % 2, "earliest_cr_line": "2003-07", "inq_last_6mths": i % 4, "open_acc": 9,
        "pub_rec": 0, "revol_bal": 5000.0 + i, "revol_util": 33.3, "total_acc": 21, "bc_open_to_buy": 1500.0,
        "bc_util": 61.2, "total_il_high_credit_limit": 25_000.0, "loan_status": "Current",
    }
    rec.update(overrides)
    return rec


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
    """``make_applicant(i, **overrides)``: a valid application with id ``i``."""
    return make_applicant


@pytest.fixture
def store(api):
    """``store(records)``: POST them through the API in chunks of 1,000, asserting 201."""
    return lambda records, chunk=1000: post_applicants(api, records, chunk)
