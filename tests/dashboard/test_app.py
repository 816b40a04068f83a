"""The dashboard's routes through the Flask client.

The token on every data route, the login session, the open routes leaking nothing, the request limits, and a
page that loads nothing from anywhere else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from credit_core.config import ConfigError
from dashboard import auth, pages
from dashboard.app import create_app
from deploy.services import free_port

TOKEN = "dashboard-test-token-0123"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
URL = re.compile(rb"https?://", re.I)


@pytest.fixture
def app():
    # HBase on a port nothing listens on: the lookup's failure is real, and no collector runs.
    return create_app({"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_TARGETS": "", "START_COLLECTORS": False,
                       "HBASE_PORT": str(free_port()), "HBASE_TIMEOUT_MS": "2000"})


@pytest.fixture
def client(app):
    return app.test_client()


def logged_in(client):
    resp = client.post("/login", data={"token": TOKEN})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    return resp


def sample_url(rule) -> str:
    return rule.build({name: "1" for name in rule.arguments})[1] if rule.arguments else rule.rule


def test_every_route_but_the_open_ones_needs_the_token(app, client):
    data_routes, checked = [], 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in pages.OPEN_ENDPOINTS:
            continue
        url = sample_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(url, method=method)
            checked += 1
            if rule.endpoint == "pages.index":
                assert resp.status_code == 303 and resp.headers["Location"] == "/login", url
                continue
            assert resp.status_code == 401, (method, url, resp.status_code)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert resp.get_json()["error"]
            data_routes.append(url)
            # a wrong token, and the token in the query string, are refused too
            assert client.open(url, method=method, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
            assert client.open(f"{url}?token={TOKEN}", method=method).status_code == 401
    assert {"/api/pipeline", "/api/business", "/api/deadletters", "/api/lookup/1"} <= set(data_routes)
    assert checked >= 5


def test_the_bearer_token_opens_the_data_routes(client):
    for url in ("/api/pipeline", "/api/business", "/api/deadletters"):
        resp = client.get(url, headers=BEARER)
        assert resp.status_code == 200, url
        assert resp.headers["Cache-Control"] == "no-store"
    body = client.get("/api/pipeline", headers=BEARER).get_json()
    assert set(body) >= {"services", "counters", "throughput", "stages", "lag", "latency", "dead_letters",
                         "infrastructure"}


def test_the_open_routes_leak_nothing(client):
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    for url in ("/health", "/login", "/static/dashboard.js", "/static/dashboard.css", "/vendor/chart.min.js"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert TOKEN.encode() not in resp.data
        assert b"127.0.0.1" not in resp.data or url == "/vendor/chart.min.js"


def test_the_login_form_sets_a_signed_http_only_strict_cookie(client):
    wrong = client.post("/login", data={"token": "not-the-token"})
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers
    assert b"not the dashboard" in wrong.data
    resp = logged_in(client)
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie
    page = client.get("/")
    assert page.status_code == 200 and b'id="view-pipeline"' in page.data and TOKEN.encode() not in page.data
    assert client.get("/api/pipeline").status_code == 200                    # the cookie is enough
    assert client.get("/login").status_code == 303                           # already in
    out = client.post("/logout")
    assert out.status_code == 303 and f"{auth.COOKIE}=;" in out.headers["Set-Cookie"]
    assert client.get("/api/pipeline").status_code == 401


def test_a_forged_or_foreign_cookie_is_refused(client):
    client.set_cookie(auth.COOKIE, auth.make_session("some-other-token", 0, 10**10))
    assert client.get("/api/pipeline").status_code == 401
    client.set_cookie(auth.COOKIE, "9999999999.abc.def")
    assert client.get("/api/pipeline").status_code == 401


def test_login_from_another_origin_is_refused_and_guessing_is_throttled(client):
    cross = client.post("/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "Set-Cookie" not in cross.headers
    assert client.post("/login", data={"token": TOKEN}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    for _ in range(auth.FAILED_LOGINS_PER_MINUTE):
        assert client.post("/login", data={"token": "guess-guess"}).status_code == 401
    assert client.post("/login", data={"token": TOKEN}).status_code == 429


def test_request_bodies_are_limited(client):
    resp = client.post("/login", data={"token": "x" * 10_000})
    assert resp.status_code == 413 and "4096" in resp.get_json()["error"]


def test_lookup_takes_only_an_application_id_and_says_when_hbase_is_down(client):
    for bad in ("abc", "0", "1" * 21, "-5", "１２"):
        resp = client.get(f"/api/lookup/{bad}", headers=BEARER)
        assert resp.status_code == 400, bad
    down = client.get("/api/lookup/42", headers=BEARER)
    assert down.status_code == 503 and "HBase" in down.get_json()["error"]
    assert client.get("/api/deadletters?limit=9999", headers=BEARER).status_code == 400


def test_every_response_carries_the_security_headers(client):
    logged_in(client)
    for url in ("/", "/login", "/health", "/api/pipeline", "/static/dashboard.js", "/vendor/chart.min.js", "/nope"):
        resp = client.get(url)
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "action") and value is not None:
                self.refs.append(value)


def test_the_page_and_its_assets_load_nothing_from_elsewhere(client):
    logged_in(client)
    seen: dict[str, bytes] = {}
    for page in ("/", "/login"):
        html = client.get(page).data
        assert not URL.search(html), page
        parser = _Refs()
        parser.feed(html.decode())
        for ref in parser.refs:
            assert ref.startswith(("/", "#", "data:")) and not ref.startswith("//"), ref
            if ref.startswith("/") and ref not in ("/login", "/logout"):
                resp = client.get(ref)
                assert resp.status_code == 200, ref
                seen[ref] = resp.data
    assert {"/static/dashboard.js", "/static/dashboard.css", "/vendor/chart.min.js"} <= set(seen)
    for ref, body in seen.items():
        if ref == "/vendor/chart.min.js":
            # Debian's Chart.js names its home pages in its licence comments only
            body = re.sub(rb"/\*!.*?\*/", b"", body, flags=re.S)
            assert b"Chart" in body
        assert not URL.search(body), ref
        assert b"@import" not in body and b"url(" not in body.replace(b"data:", b""), ref


def test_the_app_refuses_to_start_without_a_token_or_chartjs(tmp_path):
    with pytest.raises(ConfigError, match="DASHBOARD_TOKEN"):
        create_app({"DASHBOARD_TOKEN": None, "START_COLLECTORS": False})
    with pytest.raises(ConfigError, match="Chart.js is missing"):
        create_app({"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_CHARTJS": str(tmp_path / "chart.min.js")})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    for extra, message in (({}, "DASHBOARD_TOKEN is not set"),
                           ({"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_CHARTJS": str(tmp_path / "x.js")},
                            "apt-get install -y libjs-chart.js")):
        proc = subprocess.run([sys.executable, "-m", "dashboard"], env={**env, **extra}, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
