"""A running worker's web routes (real servers, both stacks): /metrics after a small dirty run (the raw topic read
by the RawReader or by a faust agent), /ready around its partitions, /health when an agent dies inside it or a
stage waits on a service that is down."""

from __future__ import annotations

import asyncio
import collections
import time

import orjson
import pytest
import requests
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from deploy.services import free_port, wait_for

STAGES = ("filter", "decision", "submit", "save")


def get(port: int, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def answers(port: int, path: str):
    """A predicate for wait_for: the route answers at all."""
    def check():
        try:
            get(port, path)
            return True
        except requests.RequestException:
            return False
    return check


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of the worker's /metrics."""
    resp = get(port, "/metrics")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def series(samples, name: str, **labels) -> dict[tuple, float]:
    """The samples of ``name`` whose labels include ``labels``."""
    return {lab: v for (n, lab), v in samples.items() if n == name and set(labels.items()) <= set(lab)}


def value(samples, name: str, **labels) -> float:
    return sum(series(samples, name, **labels).values())


def outcomes(samples, stage: str) -> dict[tuple[str, str], float]:
    out = {}
    for lab, v in series(samples, "credit_stage_records_out_total", stage=stage).items():
        d = dict(lab)
        out[(d["outcome"], d["reason"])] = v
    return out


@pytest.mark.parametrize("raw_consumer", ["aiokafka", "faust"])
def test_worker_metrics_count_what_was_saved_and_dead_lettered(topology, workload, stack, raw_consumer):
    msgs, ids, dirty = workload(1200, dirty_every=40)
    topology.produce(msgs)
    port = free_port()
    topology.worker(web_port=port, RAW_CONSUMER=raw_consumer)
    topology.wait_accounted(ids)
    result = topology.reconcile(ids)
    assert result["dlq_ids"] == dirty
    events = [orjson.loads(v) for _, v in topology.read_topic(topology.settings.topic_decisions)]
    policy = collections.Counter(e["reasons"][0]["code"] for e in events if e["decided_by"] == "policy")
    model = collections.Counter(e["decision"] for e in events if e["decided_by"] == "model")
    dlq_reasons = collections.Counter(d["reason"] for d in result["dlq"])

    # The save stage counts after it has sent the decision events: wait until the counters caught up.
    wait_for(lambda: value(scrape(port), "credit_stage_records_out_total", stage="save") >= result["rows"], 30,
             what="the save stage's counters")
    m = scrape(port)

    filt = outcomes(m, "filter")
    assert value(m, "credit_stage_records_in_total", stage="filter") == len(ids)
    assert filt.pop(("clean", "")) == len(ids) - len(dirty)
    assert filt == {("dead_lettered", reason): n for reason, n in dlq_reasons.items()}

    clean = len(ids) - len(dirty)
    assert value(m, "credit_stage_records_in_total", stage="decision") == clean
    decision = outcomes(m, "decision")
    assert {r: n for (o, r), n in decision.items() if o == "declined_policy"} == dict(policy)
    assert decision[("eligible", "")] == sum(model.values())
    assert sum(decision.values()) == clean

    assert value(m, "credit_stage_records_in_total", stage="submit") == sum(model.values())
    assert outcomes(m, "submit") == {("approved", ""): model["approve"], ("declined_model", ""): model["decline"]}

    assert value(m, "credit_stage_records_in_total", stage="save") == result["rows"]
    assert outcomes(m, "save") == {("saved", ""): result["rows"]}
    # ... and by grade (the dashboard's approval rate by grade): every grade a real one, totals as decided.
    by_grade = series(m, "credit_decisions_saved_total")
    assert {dict(lab)["grade"] for lab in by_grade} <= set("ABCDEFG")
    assert value(m, "credit_decisions_saved_total", decision="approve") == model["approve"]
    assert value(m, "credit_decisions_saved_total", decided_by="policy") == sum(policy.values())
    assert value(m, "credit_decisions_saved_total") == result["rows"]

    # Histograms: a batch duration per batch of each stage, a latency per applicant saved.
    for stage in STAGES:
        assert value(m, "credit_stage_batch_duration_seconds_count", stage=stage) >= 1
    assert value(m, "credit_end_to_end_latency_seconds_count") == result["rows"]
    assert value(m, "credit_end_to_end_latency_seconds_sum") > 0
    assert value(m, "credit_end_to_end_latency_seconds_bucket", le="+Inf") == result["rows"]
    # The HBase writer: one main row and one time-index row per decision saved.
    assert value(m, "credit_hbase_rows_written_total", table="decisions") == result["rows"]
    assert value(m, "credit_hbase_rows_written_total", table="decisions_by_time") == result["rows"]
    assert value(m, "credit_hbase_write_duration_seconds_count") >= 1
    assert value(m, "credit_hbase_write_retries_total") == 0
    assert value(m, "process_cpu_seconds_total") > 0      # prometheus-client's default collectors

    for stage in STAGES:
        states = {dict(lab)["state"]: v for lab, v in series(m, "credit_stage_state", stage=stage).items()}
        assert sorted(states) == ["crashed", "idle", "running", "stalled"] and sum(states.values()) == 1
        assert states["running"] + states["idle"] == 1
        assert value(m, "credit_stage_seconds_since_last_record", stage=stage) >= 0

    health = get(port, "/health")
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "ok" and sorted(body["stages"]) == sorted(STAGES)
    s = topology.settings
    topics = {s.topic_raw, s.topic_clean, s.topic_eligible, s.topic_scored}
    if stack == "apache":
        assert body["lag_available"] is True
        # Everything was processed: every partition of every stage's topic drains to lag 0 (commits are
        # periodic, so wait for them).
        def drained():
            lag = series(scrape(port), "credit_consumer_lag_records")
            return len(lag) == 4 * len(topics) and not any(lag.values())
        wait_for(drained, 30, what="lag 0 on every partition")
        lag = series(scrape(port), "credit_consumer_lag_records")
        assert {dict(lab)["topic"] for lab in lag} == topics
        assert value(scrape(port), "credit_consumer_lag_available") == 1
        assert all(st["lag"] == 0 for st in get(port, "/health").json()["stages"].values())
    else:
        assert body["lag_available"] is False and "KAFKA_END_OFFSETS_RELIABLE" in body["lag_unavailable_reason"]
        assert all(st["lag"] is None for st in body["stages"].values())
        assert value(m, "credit_consumer_lag_available") == 0
        assert not series(m, "credit_consumer_lag_records")


def test_with_metrics_off_nothing_is_recorded_and_health_still_works(topology, workload):
    msgs, ids, _ = workload(200)
    topology.produce(msgs)
    port = free_port()
    topology.worker(web_port=port, METRICS_ENABLED="false")
    topology.wait_accounted(ids)
    m = scrape(port)
    names = {name for name, _ in m}
    for recorded in ("credit_stage_records_in_total", "credit_stage_records_out_total",
                     "credit_stage_batch_duration_seconds_count", "credit_end_to_end_latency_seconds_count",
                     "credit_hbase_rows_written_total", "credit_retries_total"):
        assert recorded not in names
    assert sum(series(m, "credit_stage_state").values()) == len(STAGES)    # health is not a metric to switch off
    assert get(port, "/health").status_code == 200
    # The worker's web server serves its own routes, not faust's partition map (which host holds what).
    assert get(port, "/router/").status_code == 404


def test_ready_only_once_the_worker_has_its_partitions(topology, workload):
    """A member that stopped heartbeating holds the raw reader's consumer group: the new worker cannot get its
    partitions until the broker expires that member, and /ready says so until then."""
    s = topology.settings
    topology.produce(workload(10)[0])
    hold_seconds = 20
    loop = asyncio.new_event_loop()

    async def join():
        consumer = AIOKafkaConsumer(
            s.topic_raw, bootstrap_servers=topology.bootstrap, group_id=f"{s.app_id}-raw",
            session_timeout_ms=hold_seconds * 1000, heartbeat_interval_ms=1000,
            rebalance_timeout_ms=hold_seconds * 1000, max_poll_interval_ms=hold_seconds * 1000,
            enable_auto_commit=False)
        await consumer.start()
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        return consumer
    holder = loop.run_until_complete(asyncio.wait_for(join(), 60))
    try:
        # From here the holder's loop does not run: no heartbeat, no rejoin, until the broker expires it.
        port = free_port()
        held_since = time.monotonic()
        worker = topology.worker(web_port=port)
        wait_for(answers(port, "/ready"), 60, what="the worker's web server")
        first = get(port, "/ready")
        assert time.monotonic() - held_since < hold_seconds, "the web server came up after the hold: raise it"
        assert first.status_code == 503, first.text
        assert first.json()["ready"] is False and "partitions" in first.json()["reason"]
        wait_for(lambda: get(port, "/ready").status_code == 200, 120, what="ready")
        assert get(port, "/ready").json() == {"ready": True, "reason": "partitions assigned, every stage started"}
        assert worker.exit_code() is None
    finally:
        try:
            loop.run_until_complete(asyncio.wait_for(holder.stop(), 30))
        except Exception:
            pass
        loop.close()


@pytest.mark.parametrize("stage", ["decision", "submit"])
def test_health_names_a_stage_whose_agent_died_inside_a_running_worker(topology, workload, tmp_path, stage):
    msgs, ids, _ = workload(300)
    topology.produce(msgs)
    port = free_port()
    trigger = tmp_path / "crash-trigger"
    worker = topology.worker(web_port=port, app="tests.topology.crash_app", CRASH_TRIGGER=str(trigger))
    topology.wait_accounted(ids)
    assert get(port, "/health").status_code == 200

    trigger.write_text(stage)
    wait_for(lambda: get(port, "/health").status_code == 503, 30, what="/health failing")
    body = get(port, "/health").json()
    assert body["status"] == "failing"
    assert body["stages"][stage]["state"] == "crashed" and "gone" in body["stages"][stage]["error"]
    assert all(st["state"] in ("running", "idle") for name, st in body["stages"].items() if name != stage)
    m = scrape(port)
    assert value(m, "credit_stage_state", stage=stage, state="crashed") == 1
    # The process lives on and keeps its partitions: only a health check that looks at each stage sees it.
    assert worker.exit_code() is None and get(port, "/ready").status_code == 200


@pytest.mark.parametrize("outage", ["risk_api", "hbase"])
def test_a_stage_waiting_on_a_down_service_is_stalled_and_its_retries_counted(request, make_topology, risk_api,
                                                                               hbase_server, workload, outage):
    down = request.getfixturevalue("own_risk_api" if outage == "risk_api" else "own_hbase")
    topology = (make_topology(hbase_server, down) if outage == "risk_api" else make_topology(down, risk_api))
    stage = "submit" if outage == "risk_api" else "save"
    msgs, ids, dirty = workload(600)
    topology.produce(msgs[:300])
    port = free_port()
    topology.worker(web_port=port, STALL_SECONDS="3")
    topology.wait_accounted(set(range(1, 301)))
    assert get(port, "/health").status_code == 200

    down.kill()
    topology.produce(msgs[300:])
    wait_for(lambda: get(port, "/health").status_code == 503, 60, what="/health failing")
    body = get(port, "/health").json()
    assert body["stages"][stage]["state"] == "stalled", body
    assert "waiting" in body["stages"][stage]["error"]
    if body["lag_available"]:
        assert body["stages"][stage]["lag"] > 0
    # No other stage has crashed. One may be stalled too, truthfully: the faust agents share the worker's consumer,
    # whose fetch waits while the blocked stage's buffer is full, so a record for another stage can wait behind it.
    assert all(st["state"] != "crashed" for st in body["stages"].values()), body
    assert body["stages"]["filter"]["state"] in ("running", "idle"), body    # its own aiokafka consumer
    m = scrape(port)
    assert value(m, "credit_stage_state", stage=stage, state="stalled") == 1
    assert value(m, "credit_retries_total", stage=stage, cause=outage) > 0
    if outage == "hbase":
        assert value(m, "credit_hbase_write_retries_total") > 0

    down.start(**({"timeout": 60} if outage == "risk_api" else {}))
    topology.wait_accounted(ids)
    assert topology.reconcile(ids)["dlq_ids"] == dirty
    wait_for(lambda: get(port, "/health").status_code == 200, 60, what="/health ok again")
    assert get(port, "/health").json()["stages"][stage]["state"] in ("running", "idle")
