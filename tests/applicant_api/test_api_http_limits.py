"""HTTP-level limits of the applicant API on both servers it runs under (werkzeug threads, gunicorn gthread).

Chunked bodies over the size limit are 413 like declared ones; 404, 405 (with Allow), 414 and 431 are
answered in the API's JSON error shape, including the ones the HTTP server answers before the app.
Requests are written on raw sockets, so nothing in a client library shapes them.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import threading
import time
from typing import NamedTuple

import orjson
import pytest
import requests

from applicant_api.serve import gunicorn_argv
from applicant_api.settings import DEFAULT_MAX_BODY
from deploy.services import free_port

GUNICORN_TOKEN = "http-limits-gunicorn-token"

PAGE = "/api/v1/applicants"
# The request-line and header limits of each server (documented in the OpenAPI description).
LIMITS = {"werkzeug": {"line": 65536, "headers": 100}, "gunicorn": {"line": 4094, "headers": 100}}


class Raw:
    """A parsed response read from a raw socket."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return orjson.loads(self.body)


def exchange(port: int, head: str, body_parts=(), timeout: float = 30) -> Raw:
    """Send ``head`` then ``body_parts`` (from a thread, ignoring a reset once the server has answered)
    and read the whole response."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send():
        try:
            sock.sendall(head.encode("latin-1"))
            for part in body_parts:
                sock.sendall(part)
        except OSError:
            pass          # the server answered early and closed: the response is what counts

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        body = resp.read()
        return Raw(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)   # wakes the sender blocked in sendall (close alone does not)
        except OSError:
            pass
        sock.close()
        sender.join(timeout)


def chunked(total: int, chunk: int = 256 * 1024):
    """A chunked body of ``total`` bytes (a JSON list of one long string, so a partial read is not JSON)."""
    data = b'["' + b"x" * (total - 4) + b'"]'
    for start in range(0, len(data), chunk):
        part = data[start:start + chunk]
        yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


def post_head(auth: str, te: str = "chunked") -> str:
    return (f"POST {PAGE} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\n"
            f"Transfer-Encoding: {te}\r\n\r\n")


@pytest.fixture(scope="module")
def gunicorn_server(mariadb, tmp_path_factory):
    """The applicant API under gunicorn (serve.gunicorn_argv: the production command line)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLICANT_API_")}
    env.update(MYSQL_URL=mariadb.url, APPLICANT_API_TOKEN=GUNICORN_TOKEN)
    log = open(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", "w+b")
    proc = subprocess.Popen(gunicorn_argv(f"127.0.0.1:{port}", workers=1, threads=4), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "gunicorn exited"
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "gunicorn did not become healthy"
        time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(15)
    log.close()


class Server(NamedTuple):
    name: str
    port: int
    auth: str      # the Authorization header line


@pytest.fixture(params=["werkzeug", "gunicorn"])
def server(request, db_url) -> Server:
    """The API under each server, over a fresh applications table."""
    if request.param == "werkzeug":
        header = request.getfixturevalue("api").headers["Authorization"]
        return Server("werkzeug", request.getfixturevalue("api_server").port, f"Authorization: {header}\r\n")
    return Server("gunicorn", request.getfixturevalue("gunicorn_server"),
                  f"Authorization: Bearer {GUNICORN_TOKEN}\r\n")


def count_rows(db_conn) -> int:
    with db_conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM applications")
        return cur.fetchone()[0]


def test_chunked_body_over_the_limit_is_413(server, db_conn):
    resp = exchange(server.port, post_head(server.auth), chunked(25 * 1024 * 1024))
    assert resp.status == 413
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"error": f"the request body is larger than {DEFAULT_MAX_BODY} bytes"}
    assert count_rows(db_conn) == 0


def test_chunked_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413(server):
    at_limit = exchange(server.port, post_head(server.auth), chunked(DEFAULT_MAX_BODY))
    assert at_limit.status == 400                      # read whole: a list of one string is not an applicant
    assert at_limit.json()["errors"][0]["field"] == "$"
    over = exchange(server.port, post_head(server.auth), chunked(DEFAULT_MAX_BODY + 1))
    assert over.status == 413


def test_chunked_body_under_the_limit_is_stored(server, applicant_factory, db_conn):
    data = orjson.dumps([applicant_factory(i) for i in range(1, 4)])
    parts = [b"%x\r\n%s\r\n" % (len(data[i:i + 100]), data[i:i + 100]) for i in range(0, len(data), 100)]
    resp = exchange(server.port, post_head(server.auth), parts + [b"0\r\n\r\n"])
    assert resp.status == 201, resp.body
    assert count_rows(db_conn) == 3


def test_other_transfer_encodings_store_nothing_and_answer_json(server, db_conn):
    for te in ("gzip, chunked", "identity", "x-custom"):
        resp = exchange(server.port, post_head(server.auth, te=te), chunked(2 * 1024 * 1024))
        assert 400 <= resp.status < 600 and resp.status != 500, (server.name, te, resp.status)
        assert resp.headers["content-type"] == "application/json" and resp.json()["error"], (server.name, te)
    assert count_rows(db_conn) == 0


def test_declared_length_over_the_limit_is_413(server):
    head = (f"POST {PAGE} HTTP/1.1\r\nHost: test\r\n{server.auth}Content-Type: application/json\r\n"
            f"Content-Length: {DEFAULT_MAX_BODY + 1}\r\n\r\n")
    resp = exchange(server.port, head, [b"x" * (DEFAULT_MAX_BODY + 1)])
    assert resp.status == 413 and "larger than" in resp.json()["error"]


def test_long_request_line_is_414_json(server):
    query = "x=" + "a" * (LIMITS[server.name]["line"] + 10)
    resp = exchange(server.port, f"GET {PAGE}?{query} HTTP/1.1\r\nHost: test\r\n{server.auth}\r\n")
    assert resp.status == 414
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["error"].startswith("Request-URI Too Long") or resp.json()["error"].startswith("URI Too Long")
    # Just under the limit the app answers (the unknown parameter is ignored).
    ok = exchange(server.port, f"GET {PAGE}?x={'a' * (LIMITS[server.name]['line'] - 100)} HTTP/1.1\r\nHost: test\r\n{server.auth}\r\n")
    assert ok.status == 200


def test_too_many_or_too_long_headers_are_431_json(server):
    many = "".join(f"X-H{i}: v\r\n" for i in range(LIMITS[server.name]["headers"] + 5))
    for extra in (many, f"X-Long: {'v' * 70000}\r\n"):
        resp = exchange(server.port, f"GET {PAGE} HTTP/1.1\r\nHost: test\r\n{server.auth}{extra}\r\n")
        assert resp.status == 431, (server.name, resp.status, resp.body[:200])
        assert resp.headers["content-type"] == "application/json" and resp.json()["error"]


def test_unknown_path_is_404_and_wrong_method_is_405_with_allow_json(server):
    missing = exchange(server.port, f"GET /api/v1/nothing HTTP/1.1\r\nHost: test\r\n{server.auth}Connection: close\r\n\r\n")
    assert missing.status == 404 and missing.headers["content-type"] == "application/json"
    assert missing.json()["error"]
    for method, path, allowed in (("DELETE", PAGE, {"GET", "POST"}), ("PUT", f"{PAGE}/1", {"GET"}),
                                  ("POST", "/health", {"GET"})):
        resp = exchange(server.port, f"{method} {path} HTTP/1.1\r\nHost: test\r\n{server.auth}Content-Length: 0\r\n"
                              "Connection: close\r\n\r\n")
        assert resp.status == 405, (method, path)
        assert resp.headers["content-type"] == "application/json" and resp.json()["error"]
        assert allowed <= {m.strip() for m in resp.headers["allow"].split(",")}
