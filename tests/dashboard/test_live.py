"""The dashboard's collectors against real servers, on each stack.

It scrapes real /metrics and /health endpoints, tails a real DLQ topic and looks applications up in real
HBase, through its routes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from credit_core.messages.dead_letter import dead_letter
from dashboard.app import create_app
from deploy.services import free_port, wait_for
from tests.dashboard.metrics_lib import RiskApiMetrics, WorkerMetrics
from tests.dashboard.servers import MetricsServer
from tests.dashboard.test_views import REFERENCE, health
from tests.factories import clean_applicant

TOKEN = "live-dashboard-token-42"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
APPROVED, DECLINED_MODEL, DECLINED_POLICY, DEAD, UNKNOWN = 5001, 5002, 5003, 9001, 7777


async def _publish_dead_letters(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for app_id, stage, reason in ((DEAD, "filter", "invalid applicant"), (9002, "filter", "invalid applicant"),
                                      (None, "filter", "not JSON")):
            partition, key, value = dead_letter(
                stage=stage, reason=reason, errors=[{"field": "dti", "reason": "has letters: '12.x5'"}],
                original=b'{"applicant": {"id": "%d", "dti": "12.x5"}}' % (app_id or 0), key=b"k",
                src={"topic": "applicants.raw", "partition": 0, "offset": 11, "timestamp_ms": 1_700_000_000_000},
                app_id=app_id, partitions=2, max_original=1024)
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def _decision(app_id: int, verdict: str, by: str) -> dict:
    scored = by == "model"
    return {
        "id": app_id, "applicant": clean_applicant(app_id), "decision": verdict, "decided_by": by,
        "probability_of_default": (0.08 if verdict == "approve" else 0.41) if scored else None,
        "risk_band": "B" if scored else None,
        "reasons": ([{"code": "DTI_HIGH", "text": "Debt-to-income ratio is higher than the average applicant's"}]
                    if scored else [{"code": "POLICY_GRADE", "text": "Grade F is outside the lending policy"}]),
        "model_version": "lr-test-1" if scored else None, "policy_version": "policy-abc", "threshold": 0.2,
        "provenance": {"topic": "applicants.raw", "partition": 1, "offset": app_id, "timestamp_ms": 1_700_000_000_000,
                       "source": "synthetic", "seq": app_id},
        "ingested_at": 1_700_000_000_010, "decided_at": 1_700_000_000_050,
    }


@pytest.fixture
def dlq_topic(broker):
    topic = f"dashboard-dlq-{uuid.uuid4().hex[:8]}"
    asyncio.run(_publish_dead_letters(broker.bootstrap, topic))
    return topic


@pytest.fixture
def hbase_prefix(hbase_server):
    from hbase_helper.layout import ensure_tables
    from hbase_helper.pool import connect, make_pool
    from hbase_helper.settings import HBaseSettings
    from hbase_helper.writer import DecisionWriter

    prefix = "d" + uuid.uuid4().hex[:10]
    settings = HBaseSettings(host=hbase_server.host, port=hbase_server.port, table_prefix=prefix, pool_size=1,
                             timeout_ms=60_000)
    with connect(settings) as conn:
        ensure_tables(conn)
    DecisionWriter(settings, pool=make_pool(settings)).write(
        [_decision(APPROVED, "approve", "model"), _decision(DECLINED_MODEL, "decline", "model"),
         _decision(DECLINED_POLICY, "decline", "policy")])
    return prefix


def test_live_figures_dead_letters_and_lookups(stack, broker, hbase_server, dlq_topic, hbase_prefix):
    worker, risk = WorkerMetrics(), RiskApiMetrics(REFERENCE)
    out = worker.records_out
    out.labels(stage="submit", outcome="approved", reason="").inc(2)
    out.labels(stage="submit", outcome="declined_model", reason="").inc(1)
    out.labels(stage="decision", outcome="declined_policy", reason="POLICY_GRADE").inc(1)
    out.labels(stage="save", outcome="saved", reason="").inc(4)
    out.labels(stage="filter", outcome="dead_lettered", reason="invalid applicant").inc(2)
    for value in (0.05, 0.15, 0.15, 0.55):
        risk.scores.labels(model_version="m-1").observe(value)
    with MetricsServer(worker.text, health=(200, health({"filter": 3}))) as w1, MetricsServer(risk.text) as api:
        targets = f"worker-1={w1.url},risk-api={api.url},producer=http://127.0.0.1:{free_port()}/metrics"
        app = create_app({"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_TARGETS": targets, "KAFKA_BROKER": broker.url,
                          "TOPIC_DLQ": dlq_topic, "HBASE_HOST": hbase_server.host, "HBASE_PORT": str(hbase_server.port),
                          "HBASE_TABLE_PREFIX": hbase_prefix, "DASHBOARD_SCRAPE_INTERVAL": "0.2",
                          "DASHBOARD_SCRAPE_TIMEOUT": "0.5"})
        client = app.test_client()
        try:
            def pipeline() -> dict:
                resp = client.get("/api/pipeline", headers=BEARER)
                assert resp.status_code == 200
                return resp.get_json()

            def settled() -> bool:
                body = pipeline()
                return (body["counters"]["approved"] == 2 and body["dead_letters"]["reader"]["records"] == 3
                        and body["infrastructure"]["hbase"]["up"] is True
                        and body["infrastructure"]["kafka"]["up"] is True)

            wait_for(settled, 90, what="the dashboard's first figures")
            body = pipeline()
            c = body["counters"]
            assert (c["approved"], c["declined_model"], c["declined_policy"], c["saved"], c["dead_lettered"]) == (
                2, 1, 1, 4, 2)
            up = {s["name"]: s["up"] for s in body["services"]}
            assert up == {"worker-1": True, "risk-api": True, "producer": False}
            assert body["services"][0]["health"]["status"] == "ok"
            assert {s["stage"]: s["lag"] for s in body["stages"]}["filter"] == 3
            assert body["dead_letters"]["by_stage_reason"] == [
                {"stage": "filter", "reason": "invalid applicant", "count": 2},
                {"stage": "filter", "reason": "not JSON", "count": 1}]
            assert {d["id"] for d in body["dead_letters"]["latest"]} == {DEAD, 9002, None}

            # live: a new decision, a crashed stage
            out.labels(stage="submit", outcome="approved", reason="").inc(5)
            crashed = health({"filter": 3}, state="crashed")
            crashed["status"] = "failing"
            w1.health = (503, crashed)
            wait_for(lambda: pipeline()["counters"]["approved"] == 7, 30, what="the new decisions")
            wait_for(lambda: pipeline()["services"][0]["health"]["status"] == "failing", 30, what="the crash")
            assert {s["stage"]: s["state"] for s in pipeline()["stages"]}["save"] == "crashed"

            scores = client.get("/api/business", headers=BEARER).get_json()["scores"]
            assert scores["count"] == 4 and scores["psi"] is not None and scores["band"] in ("stable", "watch", "shift")

            def look(app_id: int) -> dict:
                resp = client.get(f"/api/lookup/{app_id}", headers=BEARER)
                assert resp.status_code == 200, resp.data
                return resp.get_json()

            approved = look(APPROVED)
            assert approved["status"] == "approved"
            a = approved["audit"]
            assert a["probability_of_default"] == 0.08 and a["model_version"] == "lr-test-1"
            assert a["policy_version"] == "policy-abc" and a["applicant"]["id"] == APPROVED
            assert a["reasons"][0]["text"].startswith("Debt-to-income") and len(a["history"]) == 1
            assert a["provenance"]["seq"] == APPROVED and a["saved_at"] > 0
            assert look(DECLINED_MODEL)["status"] == "declined_model"
            policy = look(DECLINED_POLICY)
            assert policy["status"] == "declined_policy" and policy["audit"]["reasons"][0]["code"] == "POLICY_GRADE"
            dead = look(DEAD)
            assert dead["status"] == "dead_lettered" and dead["audit"] is None
            letter = dead["dead_letters"][0]
            assert (letter["stage"], letter["reason"]) == ("filter", "invalid applicant")
            assert letter["errors"][0]["reason"] == "has letters: '12.x5'"
            assert '"dti": "12.x5"' in letter["original_text"]
            assert "invalid applicant" in dead["message"]
            unknown = look(UNKNOWN)
            assert unknown["status"] == "not_seen" and "in flight" in unknown["message"]
            full = client.get("/api/deadletters?stage=filter&reason=not%20JSON", headers=BEARER).get_json()
            assert [d["reason"] for d in full["dead_letters"]] == ["not JSON"]
        finally:
            app.extensions["dashboard"].collectors.stop()


def test_a_broker_hbase_and_target_that_do_not_answer_are_shown_down():
    """Nothing listens on any of the ports: the dashboard keeps answering and says what is down, and why."""
    app = create_app({"DASHBOARD_TOKEN": TOKEN,
                      "DASHBOARD_TARGETS": f"worker-1=http://127.0.0.1:{free_port()}/metrics",
                      "KAFKA_BROKER": f"kafka://127.0.0.1:{free_port()}", "HBASE_PORT": str(free_port()),
                      "HBASE_TIMEOUT_MS": "2000", "DASHBOARD_SCRAPE_INTERVAL": "0.2",
                      "DASHBOARD_SCRAPE_TIMEOUT": "0.5"})
    client = app.test_client()
    try:
        def pipeline() -> dict:
            return client.get("/api/pipeline", headers=BEARER).get_json()

        def all_down() -> bool:
            body = pipeline()
            infra = body["infrastructure"]
            return (infra["kafka"]["up"] is False and infra["hbase"]["up"] is False
                    and body["services"][0]["error"] != "not scraped yet")

        wait_for(all_down, 60, what="the servers reported down")
        body = pipeline()
        worker = body["services"][0]
        assert worker["up"] is False and "connection" in worker["error"]
        assert worker["health"]["status"] == "unreachable"
        assert body["infrastructure"]["kafka"]["error"] and body["infrastructure"]["hbase"]["error"]
        assert body["counters"]["approved"] is None                     # nothing known, not zero
        assert client.get("/health").status_code == 200
    finally:
        app.extensions["dashboard"].collectors.stop()
