"""The local stack's Prometheus against real processes: every target up, the rules loaded, pipeline figures in its
store; `status` prints its address and each worker's health; when an agent dies inside the running worker,
`status` names the crashed stage and Prometheus fires StageCrashed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from deploy.job import synthetic_file
from deploy.local import up
from deploy.services import free_port, pid_alive, wait_for
from tests.deploy.stack_testlib import has_processed, stack_for, with_crash_app
from tests.deploy.test_prometheus_rules import ALERTS

PORT_VARS = ("BROKER_PORT", "MYSQL_PORT", "HBASE_PORT", "APPLICANT_API_PORT", "RISK_API_PORT", "WORKER_1_WEB_PORT",
             "ZOOKEEPER_PORT", "PRODUCER_METRICS_PORT", "PROMETHEUS_PORT", "DASHBOARD_PORT")
APPLICANTS = 300


def query(prometheus, expr: str) -> list[dict]:
    """An instant query's result vector."""
    resp = requests.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=5)
    resp.raise_for_status()
    return resp.json()["data"]["result"]


def scalar(prometheus, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_every_process_of_a_running_stack(stack, tmp_path):
    from applicant_api.importer import import_file

    env = {"CREDIT_RUN_DIR": str(tmp_path / "run"), "WORKERS": "1", "STACK": stack,
           **{name: str(free_port()) for name in PORT_VARS}}
    trigger = tmp_path / "crash-trigger"
    local = with_crash_app(stack_for(env), trigger)
    prometheus = local.prometheus
    started = [*local.infrastructure, *local.applications, prometheus]
    try:
        up(local, started)
        report = import_file(synthetic_file(local, APPLICANTS, seed=3, dirty=0), url=local.mariadb.url,
                             source="synthetic")
        assert report.imported == APPLICANTS

        # Every process of the stack is a target, and each is scraped.
        expected = {"applicant-api", "risk-api", "producer", "worker-1"}
        assert set(prometheus.targets) == expected

        seen: list[dict] = []

        def all_up() -> bool:
            seen[:] = requests.get(f"{prometheus.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            return ({t["labels"]["instance"] for t in seen} == expected and all(t["health"] == "up" for t in seen))
        try:
            wait_for(all_up, 90, interval=0.5, what="every target up in Prometheus")
        except TimeoutError:
            pytest.fail("not every target is up: " + "; ".join(
                f"{t['labels']['instance']} {t['scrapeUrl']} {t['health']} {t['lastError']}" for t in seen))
        ups = {r["metric"]["instance"]: r["value"][1] for r in query(prometheus, "up")}
        assert ups == dict.fromkeys(expected, "1"), ups
        jobs = {r["metric"]["instance"]: r["metric"]["job"] for r in query(prometheus, "up")}
        assert jobs == {"applicant-api": "applicant-api", "risk-api": "risk-api", "producer": "producer",
                        "worker-1": "worker"}

        # Pipeline figures reach its store: what the producer published and what entered the first stage.
        def counted() -> bool:
            published = scalar(prometheus, "sum(credit_producer_applicants_published_total)")
            entered = scalar(prometheus, 'sum(credit_stage_records_in_total{stage="filter"})')
            return (published or 0) >= APPLICANTS and (entered or 0) >= APPLICANTS
        wait_for(counted, 120, interval=0.5, what=f"{APPLICANTS} applicants counted in Prometheus")
        assert scalar(prometheus, 'sum(credit_http_requests_total{service="applicant_api"})') > 0
        # The embedded stack tells its workers not to trust Tansu's end offsets; Apache Kafka's are good.
        assert scalar(prometheus, "min(credit_consumer_lag_available)") == (0 if stack == "embedded" else 1)

        # The alert rules are loaded, and none fires on a healthy stack.
        groups = requests.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert [rule["name"] for rule in rules] == list(ALERTS)
        assert all(rule["health"] == "ok" for rule in rules), rules
        assert [rule["name"] for rule in rules if rule["state"] == "firing"] == []

        # `status` names where Prometheus and the dashboard answer, and the worker's health stage by stage.
        status = subprocess.run([sys.executable, "-m", "deploy.local", "status"], env={**os.environ, **env},
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert f"prometheus: http://127.0.0.1:{env['PROMETHEUS_PORT']} " in status.stdout + " ", status.stdout
        assert f"dashboard: http://127.0.0.1:{env['DASHBOARD_PORT']} " in status.stdout, status.stdout
        health = next(line for line in lines if line.startswith("worker-1 health: "))
        assert health.startswith("worker-1 health: ok: "), health
        for name in ("filter", "decision", "submit", "save"):
            assert f" {name} " in health, health
        assert next(line for line in lines if line.startswith("prometheus ")).split()[1] == "running"

        # An agent dies inside the running worker: status names the stage, Prometheus fires StageCrashed.
        worker = local.workers[0]
        wait_for(lambda: has_processed(worker, "decision"), 60, what="the decision stage at work")
        trigger.write_text("decision")
        wait_for(lambda: "decision" in worker.health().crashed(), 30, interval=0.2, what="decision crashed in /health")
        status = subprocess.run([sys.executable, "-m", "deploy.local", "status"], env={**os.environ, **env},
                                capture_output=True, text=True, timeout=60)
        health = next(line for line in status.stdout.splitlines() if line.startswith("worker-1 health: "))
        assert health.startswith("worker-1 health: FAILING (HTTP 503): decision crashed ("), health
        assert next(line for line in status.stdout.splitlines() if line.startswith("worker-1 ")).split()[1] == "running"

        def crash_alert() -> list[dict]:
            alerts = requests.get(f"{prometheus.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "StageCrashed" and a["state"] == "firing"]
        wait_for(crash_alert, 90, interval=1, what="StageCrashed firing in Prometheus")
        [alert] = crash_alert()
        assert {k: alert["labels"][k] for k in ("instance", "job", "stage", "severity")} == {
            "instance": "worker-1", "job": "worker", "stage": "decision", "severity": "critical"}
    finally:
        pids = [svc.pid() for svc in started]
        for svc in reversed(started):
            svc.stop()
    assert not any(pid and pid_alive(pid) for pid in pids)
