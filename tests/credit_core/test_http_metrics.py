"""credit_core.http_metrics on a small Flask app over real HTTP: labels from route templates only, every status
counted (errors and crashes too), /metrics open, extra collectors read at scrape time."""

from __future__ import annotations

import uuid

import pytest
import requests
from flask import Flask, abort

from applicant_api.devserver import ServerThread
from credit_core import http_metrics
from tests.credit_core.prometheus_testlib import matching, scrape, value

REQUESTS = "credit_http_requests_total"
DURATION_COUNT = "credit_http_request_duration_seconds_count"


class _Reference:
    """An extra collector whose value changes between scrapes."""

    def __init__(self) -> None:
        self.calls = 0

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        self.calls += 1
        yield GaugeMetricFamily("t_scrapes", "scrapes so far", value=self.calls)


@pytest.fixture
def server():
    app = Flask(__name__)

    @app.get("/items/<int:item_id>")
    def item(item_id: int):
        if item_id > 100:
            abort(404)
        return {"id": item_id}

    @app.post("/crash")
    def crash():
        raise RuntimeError("boom")

    reference = _Reference()
    http_metrics.install(app, "risk_api", collectors=lambda: (reference,))
    with ServerThread(app) as srv:
        yield srv


def _labels(route: str, status: int, method: str = "GET") -> dict[str, str]:
    return {"service": "risk_api", "route": route, "method": method, "status": str(status)}


def test_counts_by_template_method_and_status(server):
    before, _ = scrape(server.url + "/metrics")
    for i in range(7):
        assert requests.get(f"{server.url}/items/{i}", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/items/101", timeout=10).status_code == 404
    token = uuid.uuid4().hex
    assert requests.get(f"{server.url}/{token}/x", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/items/{token}", timeout=10).status_code == 404   # the converter refused it
    assert requests.post(f"{server.url}/crash", timeout=10).status_code == 500
    assert requests.request("PROPFIND", f"{server.url}/items/1", timeout=10).status_code == 405
    assert requests.head(f"{server.url}/items/1", timeout=10).status_code == 200
    after, text = scrape(server.url + "/metrics")

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(REQUESTS, **_labels("/items/<int:item_id>", 200)) == 7
    assert delta(DURATION_COUNT, **_labels("/items/<int:item_id>", 200)) == 7
    assert delta(REQUESTS, **_labels("/items/<int:item_id>", 404)) == 1
    assert delta(REQUESTS, **_labels("<unmatched>", 404)) == 2
    assert delta(REQUESTS, **_labels("/crash", 500, "POST")) == 1
    assert delta(REQUESTS, **_labels("<unmatched>", 405, "other")) == 1
    assert delta(REQUESTS, **_labels("/items/<int:item_id>", 200, "HEAD")) == 1
    assert delta(REQUESTS, **_labels("/metrics", 200)) == 1
    assert token not in text and "PROPFIND" not in text
    methods = {dict(lab)["method"] for lab in matching(after, REQUESTS)}
    assert methods <= http_metrics.METHODS | {http_metrics.OTHER_METHOD}
    # The extra collector is read at each scrape.
    assert value(after, "t_scrapes") == value(before, "t_scrapes") + 1


def test_an_unknown_service_is_refused():
    with pytest.raises(ValueError, match="service must be one of"):
        http_metrics.install(Flask(__name__), "somebody")
