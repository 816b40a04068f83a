"""The risk API over real HTTP: scoring, every 400 path, auth, model card, and responses valid per /openapi.json."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import jsonschema
import orjson
import pytest
import requests

from deploy.services import free_port
from risk_api import settings
from risk_api.app import create_app
from risk_api.openapi import spec


def check(resp: requests.Response, path: str, method: str = "post") -> dict:
    """Validate a real response against the OpenAPI document the server itself publishes."""
    doc = spec()
    responses = doc["paths"][path][method]["responses"]
    assert str(resp.status_code) in responses, f"{resp.status_code} not documented for {method} {path}"
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    schema = responses[str(resp.status_code)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(body)
    return body


@pytest.fixture
def api(serve, model_path):
    return serve(model_path)


def test_single_applicant(api, clean_records):
    rec = clean_records[0]
    body = check(api.request("POST", "/api/v1/score", json=rec), "/api/v1/score")
    assert body["id"] == rec["id"] and 0 < body["probability_of_default"] < 1
    assert body["decision"] in ("approve", "decline") and body["model_version"]
    assert 1 <= len(body["reasons"]) <= 4


def test_cleaned_importer_records_are_accepted_as_they_are(api, clean_records, trained):
    recs = clean_records[:1000]
    body = check(api.request("POST", "/api/v1/score", json={"applicants": recs}), "/api/v1/score")
    assert body["threshold"] == trained.artifact["decision_threshold"]
    assert all((r["decision"] == "decline") == (r["probability_of_default"] >= body["threshold"])
               for r in body["results"])
    assert [r["id"] for r in body["results"]] == [r["id"] for r in recs]
    assert all("error" not in r and r["model_version"] == body["model_version"] for r in body["results"])
    declined = sum(r["decision"] == "decline" for r in body["results"])
    assert 0 < declined < len(recs)


def test_batch_isolates_bad_applicants(api, clean_records):
    good = clean_records[0]
    cases = [("dti", "NaN"), ("annual_inc", "Infinity"), ("loan_amnt", "-Infinity"), ("int_rate", "1e999"),
             ("dti", '"12.5"'), ("annual_inc", "true"), ("loan_amnt", "null"), ("grade", "3"),
             ("term", "[36]"), ("funded_amnt", "{}")]
    items = [json.dumps(good)]
    for field, raw in cases:
        rec = json.dumps({k: v for k, v in good.items() if k != field})
        items.append(rec[:-1] + f', "{field}": {raw}}}')
    items.append('"just a string"')
    items.append(json.dumps(dict(good, id=999, brand_new_field=[1, {"x": None}], loan_status="Charged Off")))
    resp = api.request("POST", "/api/v1/score", data="{\"applicants\": [" + ",".join(items) + "]}",
                       headers={"Content-Type": "application/json"})
    body = check(resp, "/api/v1/score")
    results = body["results"]
    assert len(results) == len(items)
    assert "error" not in results[0] and "error" not in results[-1]
    for (field, _), result in zip(cases, results[1:]):
        assert result["error"]["field"] == field, (field, result)
        assert result["id"] == good["id"]
    assert results[-2] == {"id": None, "error": {"field": "$", "reason": "must be an object, got str"}}
    # Unknown fields are ignored: same score as the plain record.
    assert results[-1]["probability_of_default"] == results[0]["probability_of_default"]
    assert results[-1]["id"] == 999


@pytest.mark.parametrize("data, field, reason", [
    (b"", "$", "empty"),
    (b"not json", "$", "not valid JSON"),
    (b'{"applicants": [', "$", "not valid JSON"),
    (b"[1, 2]", "$", "got a JSON list"),
    (b'"hello"', "$", "got a JSON str"),
    (b'{"applicants": {"id": 1}}', "applicants", "must be a list"),
    (b'{"applicants": []}', "applicants", "no applicants"),
    (b'{"applicants": [' + b",".join([b"{}"] * 10_001) + b"]}", "applicants", "at most 10000"),
])
def test_bad_bodies_get_400(api, data, field, reason):
    resp = api.request("POST", "/api/v1/score", data=data, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    body = check(resp, "/api/v1/score")
    assert body["error"]["field"] == field and reason in body["error"]["reason"], body


def test_single_bad_applicant_gets_400_with_field(api, clean_records):
    resp = api.request("POST", "/api/v1/score", data=json.dumps(dict(clean_records[0], dti=math.nan)))
    assert resp.status_code == 400
    body = check(resp, "/api/v1/score")
    assert body["error"]["field"] == "dti" and body["error"]["reason"].startswith("must be a finite number")
    assert body["id"] == clean_records[0]["id"]
    resp = api.request("POST", "/api/v1/score", json={})
    assert resp.status_code == 400 and check(resp, "/api/v1/score")["error"]["reason"] == "is required"


def test_too_large_body(serve, model_path, clean_records):
    api = serve(model_path, MAX_CONTENT_LENGTH=4096)
    resp = api.request("POST", "/api/v1/score", json={"applicants": clean_records[:100]})
    assert resp.status_code == 413
    assert "larger than 4096 bytes" in check(resp, "/api/v1/score")["error"]["reason"]


def test_auth(api, tokens, clean_records):
    rec = clean_records[0]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {tokens['api']}"},
                    {"Authorization": "Bearer"}):
        resp = api.request("POST", "/api/v1/score", token=None, json=rec, headers=headers)
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        check(resp, "/api/v1/score")
    assert api.request("GET", "/api/v1/model", token=None).status_code == 401
    # Admin routes take the admin token only.
    assert api.request("POST", "/api/v1/admin/reload", token=tokens["api"]).status_code == 401
    check(api.request("POST", "/api/v1/admin/reload", token=tokens["admin"]), "/api/v1/admin/reload")
    # Health and the API description need no token.
    check(api.request("GET", "/health", token=None), "/health", "get")
    assert api.request("GET", "/openapi.json", token=None).json() == spec()


def test_refuses_to_start_without_token(model_path, monkeypatch):
    monkeypatch.delenv("RISK_API_TOKEN", raising=False)
    monkeypatch.delenv("RISK_API_AUTH", raising=False)
    with pytest.raises(settings.SettingsError, match="RISK_API_TOKEN"):
        create_app({"MODEL_PATH": str(model_path)})
    monkeypatch.setenv("RISK_API_AUTH", "off")
    app = create_app({"MODEL_PATH": str(model_path)})
    assert app.test_client().get("/api/v1/model").status_code == 200


def test_refuses_to_start_without_model(tmp_path, tokens):
    with pytest.raises(ValueError, match="cannot read artifact"):
        create_app({"MODEL_PATH": str(tmp_path / "missing.json"), "API_TOKEN": tokens["api"]})


def test_settings_from_env():
    cfg = settings.from_env({"RISK_THRESHOLD": "0.3", "RISK_MAX_BATCH": "50", "RISK_API_TOKEN": "t"})
    assert cfg["THRESHOLD"] == 0.3 and cfg["MAX_BATCH"] == 50 and cfg["AUTH"] and cfg["API_TOKEN"] == "t"
    assert settings.from_env({})["THRESHOLD"] is None
    assert settings.from_env({})["MODEL_PATH"] == str(settings.DEFAULT_MODEL_PATH)
    for env in ({"RISK_THRESHOLD": "1.5"}, {"RISK_THRESHOLD": "abc"}, {"RISK_MAX_BATCH": "0"},
                {"RISK_API_AUTH": "maybe"}, {"RISK_MODEL_WATCH_SECONDS": "-1"}):
        with pytest.raises(settings.SettingsError):
            settings.from_env(env)


def test_threshold_is_configurable(serve, model_path, clean_records):
    recs = {"applicants": clean_records[:50]}
    strict = serve(model_path, THRESHOLD=0.0).request("POST", "/api/v1/score", json=recs).json()
    lenient = serve(model_path, THRESHOLD=1.0).request("POST", "/api/v1/score", json=recs).json()
    assert strict["threshold"] == 0.0 and lenient["threshold"] == 1.0
    assert {r["decision"] for r in strict["results"]} == {"decline"}
    assert {r["decision"] for r in lenient["results"]} == {"approve"}


def test_model_card(api, trained):
    body = check(api.request("GET", "/api/v1/model"), "/api/v1/model", "get")
    assert body["model_version"] == trained.artifact["version"]
    assert body["report"] == trained.artifact["report"]
    assert body["threshold_source"] == "model"
    assert body["decision_threshold"] == trained.artifact["decision_threshold"]
    assert [f["name"] for f in body["coefficients"]["numeric"]] == body["features"][:len(body["coefficients"]
                                                                                          ["numeric"])]


def test_unknown_route_and_method_are_json(api):
    resp = api.request("GET", "/api/v1/score")
    assert resp.status_code == 405 and resp.json()["error"]["field"] == "$"
    assert api.request("GET", "/nope").status_code == 404


def test_serve_cli_under_gunicorn(model_path, clean_records, tokens, tmp_path):
    port = free_port()
    env = dict(os.environ, RISK_MODEL_PATH=str(model_path), RISK_API_TOKEN=tokens["api"])
    env.pop("RISK_API_AUTH", None)
    proc = subprocess.Popen([sys.executable, "-m", "risk_api", "serve", "--port", str(port), "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "wb"))
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(url + "/health", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        assert health.status_code == 200
        resp = requests.post(url + "/api/v1/score", data=orjson.dumps({"applicants": clean_records[:10]}),
                             headers={"Authorization": f"Bearer {tokens['api']}"}, timeout=10)
        assert resp.status_code == 200 and len(resp.json()["results"]) == 10
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_serve_cli_refuses_without_token(model_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RISK_API_TOKEN", "RISK_API_AUTH")}
    env["RISK_MODEL_PATH"] = str(model_path)
    proc = subprocess.run([sys.executable, "-m", "risk_api", "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "RISK_API_TOKEN is not set" in proc.stderr
