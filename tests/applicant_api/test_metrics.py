"""GET /metrics of the applicant API: open, counts by route template, and exact under gunicorn with several workers
(summed over the workers, a killed worker's counts kept and its live gauge dropped, the folder emptied on restart)."""

from __future__ import annotations

import secrets
import uuid

import pytest
import requests

from deploy.services import GunicornApp, free_port, wait_for
from tests.credit_core.prometheus_testlib import (children, concurrently, kill_9, matching, per_process_counts,
                                                  scrape, value)
from tests.store import insert_applicants

REQUESTS = "credit_http_requests_total"
DURATION_COUNT = "credit_http_request_duration_seconds_count"
WORKERS = "credit_http_workers"
ONE = "/api/v1/applicants/<applicant_id>"
LIST = "/api/v1/applicants"


def _labels(route: str, status: int, method: str = "GET") -> dict[str, str]:
    return {"service": "applicant_api", "route": route, "method": method, "status": str(status)}


def test_metrics_is_open_and_counts_by_route_template(api, api_server, applicant_factory):
    api.post(LIST, json=[applicant_factory(i) for i in range(1, 4)]).raise_for_status()
    url = api_server.url + "/metrics"
    before, _ = scrape(url)                        # no token: open like /health
    for i in (1, 2, 3, 2):
        assert api.get(f"{LIST}/{i}").status_code == 200
    assert api.get(f"{LIST}/999").status_code == 404                 # a matched route's own 404
    secret_path = f"/no/such/{uuid.uuid4().hex}"
    assert api.get(secret_path).status_code == 404                    # no route at all
    assert api.post(f"{LIST}/1").status_code == 405
    assert requests.get(api_server.url + LIST, timeout=10).status_code == 401   # no token
    assert api.request("BREW", LIST).status_code == 405                       # a method nobody knows
    after, text = scrape(url)

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(REQUESTS, **_labels(ONE, 200)) == 4
    assert delta(DURATION_COUNT, **_labels(ONE, 200)) == 4
    assert delta(REQUESTS, **_labels(ONE, 404)) == 1
    assert delta(REQUESTS, **_labels("<unmatched>", 404)) == 1
    assert delta(REQUESTS, **_labels("<unmatched>", 405, "POST")) == 1
    assert delta(REQUESTS, **_labels(LIST, 401)) == 1
    assert delta(REQUESTS, **_labels("<unmatched>", 405, "other")) == 1
    assert delta(REQUESTS, **_labels("/metrics", 200)) == 1          # the first scrape
    # Label values come from templates, never from what the client sent.
    assert secret_path.rsplit("/", 1)[1] not in text and "/api/v1/applicants/1" not in text and "BREW" not in text
    routes = {dict(lab)["route"] for lab in matching(after, REQUESTS, service="applicant_api")}
    assert routes <= {LIST, ONE, "/health", "/metrics", "/openapi.json", "<unmatched>"}
    assert value(after, "process_cpu_seconds_total") > 0 and matching(after, "python_info")


@pytest.fixture
def gunicorn_api(tmp_path, db_url):
    """The applicant API under gunicorn: 2 sync workers (one request each at a time, so concurrent clients reach
    both), started by deploy.services.GunicornApp with its gunicorn configuration file."""
    token = "metrics-" + secrets.token_urlsafe(12)
    insert_applicants(db_url, range(1, 11))
    svc = GunicornApp(name="applicant-api", factory="applicant_api.app:create_app()", run_dir=tmp_path,
                      port=free_port(), workers=2, threads=1, config="python:applicant_api.gunicorn_conf",
                      env={"MYSQL_URL": db_url, "APPLICANT_API_TOKEN": token, "APPLICANT_API_POOL_SIZE": "1"})
    svc.start()
    svc.token = token
    yield svc
    svc.stop()


def _workers_up(svc, n: int = 2) -> list[int]:
    """Wait until gunicorn runs ``n`` workers, each counted by the workers gauge (the API answers /health as soon
    as one worker runs); their pids."""
    def up() -> bool:
        samples, _ = scrape(svc.url + "/metrics")
        return len(children(svc.pid())) == n and value(samples, WORKERS, service="applicant_api") == n

    wait_for(up, timeout=60, what=f"{n} gunicorn workers")
    return children(svc.pid())


def _get_many(svc, path: str, n: int) -> list[int]:
    headers = {"Authorization": f"Bearer {svc.token}"}
    # A new connection per request: gunicorn's workers take turns accepting them.
    return concurrently(lambda i: requests.get(svc.url + path, headers=headers, timeout=30).status_code, n)


@pytest.mark.timeout(180)
def test_gunicorn_workers_are_summed_and_a_killed_worker_keeps_its_counts(gunicorn_api):
    svc = gunicorn_api
    master = svc.pid()
    workers = _workers_up(svc)
    # Send until both workers have answered some (each worker counts in its own file).
    sent = 0
    while True:
        assert _get_many(svc, f"{LIST}/7", 40) == [200] * 40
        sent += 40
        per_worker = per_process_counts(svc.metrics_dir, REQUESTS, **_labels(ONE, 200))
        if len(per_worker) >= 2:
            break
        assert sent < 4000, f"every request went to one worker: {per_worker}"
    assert set(per_worker) == set(workers) and sum(per_worker.values()) == sent
    unmatched = _get_many(svc, f"/no/such/{uuid.uuid4().hex}", 5)
    assert unmatched == [404] * 5

    samples, text = scrape(svc.url + "/metrics")
    assert value(samples, REQUESTS, **_labels(ONE, 200)) == sent
    assert value(samples, DURATION_COUNT, **_labels(ONE, 200)) == sent
    assert value(samples, REQUESTS, **_labels("<unmatched>", 404)) == 5
    assert "/no/such" not in text
    assert value(samples, WORKERS, service="applicant_api") == 2

    # kill -9 a worker: gunicorn starts another; the dead one's counter file stays (its requests happened),
    # its live gauge goes (child_exit -> mark_process_dead), so the workers gauge says 2, not 3.
    victim = workers[0]
    kill_9(victim)

    def replaced() -> bool:
        now = children(master)
        return len(now) == 2 and victim not in now and (svc.metrics_dir / f"gauge_livesum_{min(now)}.db").exists() \
            and (svc.metrics_dir / f"gauge_livesum_{max(now)}.db").exists()

    wait_for(replaced, timeout=60, what="gunicorn replaced the killed worker")
    assert not (svc.metrics_dir / f"gauge_livesum_{victim}.db").exists()
    assert (svc.metrics_dir / f"counter_{victim}.db").exists()
    samples, _ = scrape(svc.url + "/metrics")
    assert value(samples, REQUESTS, **_labels(ONE, 200)) == sent
    assert value(samples, WORKERS, service="applicant_api") == 2
    more = _get_many(svc, f"{LIST}/8", 10)
    assert more == [200] * 10
    samples, _ = scrape(svc.url + "/metrics")
    assert value(samples, REQUESTS, **_labels(ONE, 200)) == sent + 10

    # A restart starts from zero: gunicorn's on_starting empties the folder of the previous run's files.
    svc.stop()
    stale = {p.name for p in svc.metrics_dir.glob("*.db")}
    assert f"counter_{victim}.db" in stale
    svc.start()
    _workers_up(svc)
    assert not any(svc.metrics_dir.joinpath(name).exists() for name in stale)
    samples, _ = scrape(svc.url + "/metrics")
    assert value(samples, REQUESTS, **_labels(ONE, 200)) == 0


def test_the_gunicorn_hooks_label_the_service_as_the_app_does():
    from applicant_api import app, gunicorn_conf

    assert gunicorn_conf.SERVICE == app.SERVICE
