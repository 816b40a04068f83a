"""The risk API under hostile input, over real HTTP: exact ids, per-applicant errors in big batches, unreadable
JSON, chunked bodies over the limit (werkzeug and gunicorn), admin token, public health, JSON errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from deploy.services import free_port
from risk_api import settings
from risk_api.app import create_app

NAN_AND_HUGE_ID = '{"id": 18446744073709551616, "loan_amnt": NaN}'


@pytest.fixture
def api(serve, model_path):
    return serve(model_path)


def _post(api, raw: bytes | str):
    return api.request("POST", "/api/v1/score", data=raw, headers={"Content-Type": "application/json"})


def test_the_issue_body_is_a_400_naming_the_id(api):
    resp = _post(api, NAN_AND_HUGE_ID)
    assert resp.status_code == 400
    assert resp.json() == {"id": None, "error": {"field": "id", "reason": "must be between 1 and "
                                                                        "9223372036854775807"}}


def test_one_bad_applicant_does_not_fail_a_batch_of_ten_thousand(api, clean_records):
    good = [json.dumps(r) for r in (clean_records * 4)[:9_999]]
    items = good[:5000] + [NAN_AND_HUGE_ID] + good[5000:]
    resp = _post(api, '{"applicants": [' + ",".join(items) + "]}")
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert len(results) == 10_000
    assert results[5000] == {"id": None, "error": {"field": "id",
                                                   "reason": "must be between 1 and 9223372036854775807"}}
    assert all("error" not in r for i, r in enumerate(results) if i != 5000)


# (id as written in JSON, expected echo or None, error reason fragment or None)
ID_CASES = [
    ("9007199254740993", 9007199254740993, None),              # above 2^53: exact, never through a float
    ("9223372036854775807", 9223372036854775807, None),        # the documented maximum
    ('"9007199254740993"', "9007199254740993", None),          # a digit string is echoed as sent
    ("9007199254740993.0", 9007199254740993, None),            # a whole number with a fraction part, read exactly
    ("1e3", 1000, None),
    ("9223372036854775808", None, "between 1 and"),
    ("18446744073709551616", None, "between 1 and"),
    ("-1", None, "between 1 and"), ("0", None, "between 1 and"),
    ("1.5", None, "whole number"), ("1e400", None, "between 1 and"),
    ('"\\u00b2"', None, "ASCII decimal"), ('"\\u0661"', None, "ASCII decimal"), ('"\\uff11"', None, "ASCII decimal"),
    ('"1_000"', None, "ASCII decimal"), ('" 1"', None, "ASCII decimal"), ('"1\\n"', None, "ASCII decimal"),
    ('"007"', None, "leading zero"), ('"-5"', None, "ASCII decimal"), ('""', None, "ASCII decimal"),
    ('"9223372036854775807"', None, "18 ASCII decimal digits"),
    ("true", None, "boolean"), ("[1]", None, "got list"), ('{"a": 1}', None, "got dict"),
]


@pytest.mark.parametrize("written, echoed, reason", ID_CASES)
def test_ids_are_parsed_exactly(api, clean_records, written, echoed, reason):
    rec = json.dumps({k: v for k, v in clean_records[0].items() if k != "id"})
    one = rec[:-1] + f', "id": {written}}}'
    for body, batch in ((one, False), ('{"applicants": [' + rec + "," + one + "]}", True)):
        resp = _post(api, body)
        result = resp.json()["results"][1] if batch else resp.json()
        assert resp.status_code == (200 if batch or reason is None else 400), resp.text
        if reason is None:
            assert "error" not in result and result["id"] == echoed and type(result["id"]) is type(echoed)
        else:
            assert result["id"] is None and result["error"]["field"] == "id", result
            assert reason in result["error"]["reason"], result
        if batch:
            assert "error" not in resp.json()["results"][0]


def test_nan_and_infinity_are_rejected_per_field(api, clean_records):
    rec = json.dumps({k: v for k, v in clean_records[0].items() if k not in ("dti", "annual_inc")})
    items = [rec[:-1] + ', "dti": NaN, "annual_inc": 50000}', rec[:-1] + ', "dti": 10, "annual_inc": Infinity}',
             rec[:-1] + ', "dti": 10, "annual_inc": -Infinity}', rec[:-1] + ', "dti": 10, "annual_inc": 1e999}',
             rec[:-1] + ', "dti": 10, "annual_inc": 50000, "unused": NaN}']
    results = _post(api, '{"applicants": [' + ",".join(items) + "]}").json()["results"]
    assert [r.get("error", {}).get("field") for r in results] == ["dti", "annual_inc", "annual_inc", "annual_inc",
                                                                  None]
    assert all(r["error"]["reason"].startswith("must be a finite number") for r in results[:4])


@pytest.mark.parametrize("raw, reason", [
    (b'{"applicants": [', "not valid JSON"),
    (b'{"id": 1,}', "not valid JSON"),
    (b'{"id": "\xff\xfe"}', "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"id": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b'{"id": ' + b"9" * 5000 + b"}", "not valid JSON"),          # beyond the stdlib's integer-digit limit
    (b'{"id": 1, "x": "\\ud800"', "not valid JSON"),
])
def test_unreadable_json_is_a_400_with_the_reason(api, raw, reason):
    resp = _post(api, raw)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["field"] == "$" and reason in resp.json()["error"]["reason"], resp.text


def test_deep_but_readable_nesting_in_an_unused_field_is_ignored(api, clean_records):
    deep = "[" * 900 + "]" * 900
    rec = json.dumps(clean_records[0])[:-1] + f', "extra": {deep}}}'
    resp = _post(api, '{"applicants": [' + rec + "]}")
    assert resp.status_code == 200 and "error" not in resp.json()["results"][0]
    # Deep nesting (up to what the parser reads) where a value belongs is that field's error, not a crash.
    for field in ("dti", "grade", "issue_d", "purpose", "id"):
        for depth in (900, 1020):
            deep = "[" * depth + "]" * depth
            rec = json.dumps({k: v for k, v in clean_records[0].items() if k != field})[:-1] + f', "{field}": {deep}}}'
            resp = _post(api, rec)
            assert resp.status_code == 400 and resp.json()["error"]["field"] == field, (field, depth, resp.text)


# -- bodies over the limit, whatever the framing ------------------------------------------------------------------

def raw_request(port: int, head: str, chunks: list[bytes] | None = None, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send a request byte by byte as given (chunked when ``chunks``); return (status, headers, body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        try:
            sock.sendall(head.encode("latin-1") + body)
            for chunk in chunks or ():
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            if chunks is not None:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass                                 # the server answered and closed before reading everything
        data = b""
        while b"\r\n\r\n" not in data:
            block = sock.recv(65536)
            if not block:
                break
            data += block
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            block = sock.recv(65536)
            if not block:
                break
            rest += block
        return int(lines[0].split()[1]), headers, rest
    finally:
        sock.close()


def _score_head(token: str, extra: str = "Transfer-Encoding: chunked\r\n") -> str:
    return (f"POST /api/v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n")


def check_framing(port: int, token: str, limit: int, clean_records) -> None:
    # Over the limit in 64 KiB chunks, never declared: 413 as for a declared length.
    piece = b" " * 65536
    status, headers, body = raw_request(port, _score_head(token), [b"[" + piece] + [piece] * (limit // 65536 + 8))
    assert status == 413 and headers["content-type"] == "application/json", (status, body)
    assert json.loads(body)["error"]["reason"] == f"body is larger than {limit} bytes"
    # A declared length over the limit: the same answer.
    status, _, body = raw_request(port, _score_head(token, f"Content-Length: {limit + 1}\r\n"), body=b" " * 1024)
    assert status == 413 and json.loads(body)["error"]["field"] == "$"
    # Within the limit, chunked: scored.
    payload = json.dumps({"applicants": clean_records[:20]}).encode()
    chunks = [payload[i:i + 1000] for i in range(0, len(payload), 1000)]
    status, _, body = raw_request(port, _score_head(token), chunks)
    assert status == 200 and len(json.loads(body)["results"]) == 20
    # A transfer coding other than chunked: refused with the reason, in the JSON error shape.
    status, headers, body = raw_request(port, _score_head(token, "Transfer-Encoding: gzip, chunked\r\n"),
                                        [payload])
    assert status == 400 and headers["content-type"] == "application/json"
    assert "Transfer-Encoding" in json.loads(body)["error"]["field"] + json.loads(body)["error"]["reason"]
    # Request line and headers too long: 414 / 431 in the JSON error shape, from the app or the server itself.
    for size in (5000, 70_000):
        status, headers, body = raw_request(port, f"GET /{'a' * size} HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 414 and "error" in json.loads(body), (size, body[:200])
    for header in ("X-Big: " + "b" * 9000, "\r\n".join(f"X-H{i}: 1" for i in range(150))):
        status, headers, body = raw_request(port, f"GET /health HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n")
        assert status == 431 and "error" in json.loads(body), body[:200]


def test_chunked_bodies_meet_the_size_limit_on_the_test_server(serve, model_path, tokens, clean_records):
    api = serve(model_path, MAX_CONTENT_LENGTH=1 << 20)
    check_framing(int(api.url.rsplit(":", 1)[1]), tokens["api"], 1 << 20, clean_records)


GUNICORN_LAUNCHES = {
    "serve": lambda port: [sys.executable, "-m", "risk_api", "serve", "--port", str(port), "--workers", "1",
                           "--threads", "2"],
    "gunicorn-conf": lambda port: [sys.executable, "-m", "gunicorn", "-c", "python:risk_api.gunicorn_conf",
                                   "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2",
                                   "risk_api.app:create_app()"],
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("launch", sorted(GUNICORN_LAUNCHES))
def test_chunked_bodies_meet_the_size_limit_under_gunicorn(model_path, tokens, clean_records, tmp_path, launch):
    port = free_port()
    env = dict(os.environ, RISK_MODEL_PATH=str(model_path), RISK_API_TOKEN=tokens["api"],
               RISK_MAX_BODY_BYTES=str(1 << 20))
    for name in ("RISK_API_AUTH", "RISK_ADMIN_TOKEN", "RISK_ADMIN_ROUTES"):
        env.pop(name, None)
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(GUNICORN_LAUNCHES[launch](port), env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        check_framing(port, tokens["api"], 1 << 20, clean_records)
        # No admin token: the admin routes do not exist.
        resp = requests.post(f"http://127.0.0.1:{port}/api/v1/admin/reload",
                             headers={"Authorization": f"Bearer {tokens['api']}"}, timeout=10)
        assert resp.status_code == 404 and resp.json()["error"]["field"] == "$"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


# -- admin routes, health, JSON errors ------------------------------------------------------------------------------

def test_admin_routes_take_only_the_admin_token(api, tokens, clean_records):
    for path, method in (("/api/v1/admin/reload", "POST"), ("/api/v1/admin/status", "GET")):
        for token in (None, tokens["api"], "wrong", tokens["admin"] + "x"):
            resp = api.request(method, path, token=token)
            assert resp.status_code == 401 and resp.json()["error"]["field"] == "Authorization", (path, token)
        assert api.request(method, path, token=tokens["admin"]).status_code == 200
    # The admin token is not an API token.
    assert api.request("POST", "/api/v1/score", token=tokens["admin"], json=clean_records[0]).status_code == 401


def test_admin_token_is_required_even_with_api_auth_off(serve, model_path, tokens):
    api = serve(model_path, AUTH=False)
    assert api.request("GET", "/api/v1/model", token=None).status_code == 200
    assert api.request("GET", "/api/v1/admin/status", token=None).status_code == 401
    assert api.request("GET", "/api/v1/admin/status", token=tokens["admin"]).status_code == 200


def test_admin_routes_switch(model_path, tokens):
    base = {"MODEL_PATH": str(model_path), "API_TOKEN": tokens["api"], "WATCH_SECONDS": 0.0}
    # auto (default): exactly when RISK_ADMIN_TOKEN is set.
    off = create_app({**base, "ADMIN_TOKEN": None, "ADMIN_ROUTES": "auto"}).test_client()
    assert off.post("/api/v1/admin/reload").status_code == 404
    on = create_app({**base, "ADMIN_TOKEN": tokens["admin"], "ADMIN_ROUTES": "auto"}).test_client()
    assert on.post("/api/v1/admin/reload", headers={"Authorization": f"Bearer {tokens['admin']}"}).status_code == 200
    # off: no admin routes even with a token.
    off = create_app({**base, "ADMIN_TOKEN": tokens["admin"], "ADMIN_ROUTES": "off"}).test_client()
    assert off.post("/api/v1/admin/reload", headers={"Authorization": f"Bearer {tokens['admin']}"}).status_code == 404
    # on without a token, or the API token reused: refuses to start, naming the variable.
    with pytest.raises(settings.SettingsError, match="RISK_ADMIN_TOKEN is not set"):
        create_app({**base, "ADMIN_TOKEN": None, "ADMIN_ROUTES": "on"})
    with pytest.raises(settings.SettingsError, match="RISK_ADMIN_TOKEN must differ"):
        create_app({**base, "ADMIN_TOKEN": tokens["api"]})
    cfg = settings.from_env({"RISK_ADMIN_TOKEN": "a", "RISK_ADMIN_ROUTES": "ON"})
    assert cfg["ADMIN_TOKEN"] == "a" and cfg["ADMIN_ROUTES"] == "on"
    with pytest.raises(settings.SettingsError, match="RISK_ADMIN_ROUTES"):
        settings.from_env({"RISK_ADMIN_ROUTES": "maybe"})


def test_serve_refuses_admin_routes_without_admin_token(model_path, tokens):
    env = {k: v for k, v in os.environ.items() if k not in ("RISK_ADMIN_TOKEN", "RISK_API_AUTH")}
    env.update(RISK_MODEL_PATH=str(model_path), RISK_API_TOKEN=tokens["api"], RISK_ADMIN_ROUTES="on")
    proc = subprocess.run([sys.executable, "-m", "risk_api", "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "RISK_ADMIN_TOKEN is not set" in proc.stderr, proc.stderr[-2000:]


def test_public_health_says_ok_or_degraded_and_nothing_more(serve, tmp_path, model_path, tokens):
    path = tmp_path / "serving.json"
    path.write_bytes(model_path.read_bytes())
    api = serve(path)
    health = api.request("GET", "/health", token=None).json()
    version = health["model_version"]
    assert health == {"status": "ok", "model_version": version}
    path.write_bytes(b'{"format": "broken"')
    assert api.request("POST", "/api/v1/admin/reload", token=tokens["admin"]).status_code == 422
    resp = api.request("GET", "/health", token=None)
    assert resp.status_code == 200 and resp.json() == {"status": "degraded", "model_version": version}
    assert str(tmp_path) not in resp.text and "serving.json" not in resp.text
    card = api.request("GET", "/api/v1/model").json()
    assert card["reload"]["reload_ok"] is False and str(tmp_path) not in json.dumps(card["reload"])
    status = api.request("GET", "/api/v1/admin/status", token=tokens["admin"]).json()
    assert status["model_path"] == str(path) and str(path) in status["last_error"]
    assert status["model_version"] == version and status["reload_ok"] is False


def test_405_names_the_allowed_methods_and_every_error_is_json(api):
    for method, path, allowed in (("GET", "/api/v1/score", "POST"), ("DELETE", "/health", "GET"),
                                  ("PUT", "/api/v1/admin/reload", "POST")):
        resp = api.request(method, path)
        assert resp.status_code == 405 and allowed in resp.headers["Allow"], (method, path)
        assert resp.json()["error"]["field"] == "$"
    resp = api.request("GET", "/nope")
    assert resp.status_code == 404 and resp.headers["Content-Type"] == "application/json"


def test_patterns_are_full_matches(api, clean_records):
    rec = clean_records[0]
    for field, value in (("issue_d", "2014-12\n"), ("earliest_cr_line", "\n2001-01"), ("issue_d", "2014-13"),
                         ("grade", "A\n"), ("grade", " A"), ("grade", "a"), ("id", "12\n")):
        resp = api.request("POST", "/api/v1/score", json=dict(rec, **{field: value}))
        assert resp.status_code == 400 and resp.json()["error"]["field"] == field, (field, value, resp.text)


def test_an_answer_orjson_cannot_write_is_still_written():
    from flask import Flask

    from risk_api.http import json_response
    with Flask(__name__).app_context():
        resp = json_response({"id": 2 ** 70, "reason": "\ud800"}, 400)
    assert resp.status_code == 400 and json.loads(resp.get_data()) == {"id": 2 ** 70, "reason": "\ud800"}


def test_the_document_states_the_configured_limits(serve, model_path, clean_records):
    api = serve(model_path, MAX_BATCH=4, MAX_CONTENT_LENGTH=50_000)
    doc = api.request("GET", "/openapi.json", token=None).json()
    assert doc["components"]["schemas"]["Batch"]["properties"]["applicants"]["maxItems"] == 4
    assert "50000 bytes" in doc["paths"]["/api/v1/score"]["post"]["responses"]["413"]["description"]
    assert api.request("POST", "/api/v1/score", json={"applicants": clean_records[:4]}).status_code == 200
    resp = api.request("POST", "/api/v1/score", json={"applicants": clean_records[:5]})
    assert resp.status_code == 400 and "at most 4" in resp.json()["error"]["reason"]
