"""/openapi.json describes every route, and real responses validate against its schemas (jsonschema)."""

from __future__ import annotations

import datetime as dt

import jsonschema
import pytest
import requests

from applicant_api.app import create_app
from applicant_api.devserver import ServerThread
from deploy.services import free_port

PAGE = "/api/v1/applicants"


def validator(spec: dict, schema: dict) -> jsonschema.Draft202012Validator:
    # Refs are "#/components/schemas/...": give the schema the spec's components as its root.
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def check_response(spec: dict, path: str, method: str, resp: requests.Response) -> None:
    responses = spec["paths"][path][method.lower()]["responses"]
    assert str(resp.status_code) in responses, f"{method} {path} answered {resp.status_code}, undocumented"
    schema = responses[str(resp.status_code)]["content"]["application/json"]["schema"]
    assert resp.headers["Content-Type"].startswith("application/json")
    errors = list(validator(spec, schema).iter_errors(resp.json()))
    assert not errors, f"{method} {path} {resp.status_code}: {[e.message for e in errors][:5]}"


@pytest.fixture
def spec(api):
    resp = api.get("/openapi.json")
    assert resp.status_code == 200
    return resp.json()


def test_spec_is_well_formed_and_covers_every_route(spec, api_server):
    assert spec["openapi"].startswith("3.1")
    for name, schema in spec["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    app = create_app({"MYSQL_URL": "mysql://u@127.0.0.1:1/d", "APPLICANT_API_TOKEN": "route-listing"})
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<applicant_id>", "{id}")
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(ops) for path, ops in spec["paths"].items()}
    assert routes == documented
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_real_responses_validate_against_the_spec(spec, api, applicant_factory):
    created = api.post(PAGE, json=[applicant_factory(i) for i in range(1, 6)])
    check_response(spec, PAGE, "POST", created)
    assert created.status_code == 201
    single = api.post(PAGE, json=applicant_factory(6, int_rate=" 7.5%", term=" 36 months", emp_length="< 1 year",
                                                   member_id=None, emp_title=None, bc_util=""))
    check_response(spec, PAGE, "POST", single)

    page = api.get(PAGE, params={"limit": 4})
    check_response(spec, PAGE, "GET", page)
    assert page.json()["count"] == 4
    last = api.get(PAGE, params={"after": page.json()["next_after"]})
    check_response(spec, PAGE, "GET", last)
    empty = api.get(PAGE, params={"after": last.json()["next_after"]})
    check_response(spec, PAGE, "GET", empty)
    assert empty.json()["next_after"] is None

    one = api.get(f"{PAGE}/6")
    check_response(spec, f"{PAGE}/{{id}}", "GET", one)
    assert one.json()["member_id"] is None and one.json()["emp_length"] == 0
    dt.datetime.fromisoformat(one.json()["created_at"].replace("Z", "+00:00"))

    for resp, path, method in (
        (api.get(f"{PAGE}/999"), f"{PAGE}/{{id}}", "GET"),
        (api.get(PAGE, params={"limit": 0}), PAGE, "GET"),
        (api.post(PAGE, json=[applicant_factory(7, dti="x")]), PAGE, "POST"),
        (api.post(PAGE, json=applicant_factory(1)), PAGE, "POST"),
        (api.post(PAGE, data=b"x", headers={"Content-Type": "text/plain"}), PAGE, "POST"),
        (requests.get(api.base_url + PAGE, timeout=10), PAGE, "GET"),
        (requests.get(api.base_url + f"{PAGE}/1", timeout=10), f"{PAGE}/{{id}}", "GET"),
        (requests.get(api.base_url + "/openapi.json", timeout=10), "/openapi.json", "GET"),
        (api.get("/health"), "/health", "GET"),
    ):
        check_response(spec, path, method, resp)
    statuses = [r.status_code for r in (api.post(PAGE, json=applicant_factory(1)),)]
    assert statuses == [409]


def test_posted_examples_validate_against_the_input_schema(spec, applicant_factory):
    body_schema = spec["paths"][PAGE]["post"]["requestBody"]["content"]["application/json"]["schema"]
    v = validator(spec, body_schema)
    v.validate(applicant_factory(1))
    v.validate([applicant_factory(1), applicant_factory(2, int_rate=" 12.39%", term=" 60 months")])
    missing = applicant_factory(3)
    del missing["dti"]
    assert not v.is_valid(missing)
    assert not v.is_valid([])


def test_error_statuses_of_other_configurations_validate(applicant_factory, db_url, mariadb):
    app = create_app({"MYSQL_URL": mariadb.url, "APPLICANT_API_TOKEN": "small-limits",
                      "APPLICANT_API_MAX_BODY": 2048})
    headers = {"Authorization": "Bearer small-limits"}
    with ServerThread(app) as srv:
        spec = requests.get(srv.url + "/openapi.json", headers=headers, timeout=10).json()
        too_big = requests.post(srv.url + PAGE, json=[applicant_factory(i) for i in range(1, 10)],
                                headers=headers, timeout=10)
        assert too_big.status_code == 413
        check_response(spec, PAGE, "POST", too_big)
    app.extensions["applicant_api"].pool.close()
    down = create_app({"MYSQL_URL": f"mysql://credit:x@127.0.0.1:{free_port()}/credit",
                       "APPLICANT_API_TOKEN": "small-limits"})
    with ServerThread(down) as srv:
        for path, template in ((PAGE, PAGE), (f"{PAGE}/1", f"{PAGE}/{{id}}"), ("/health", "/health")):
            resp = requests.get(srv.url + path, headers=headers, timeout=10)
            assert resp.status_code == 503
            check_response(spec, template, "GET", resp)
