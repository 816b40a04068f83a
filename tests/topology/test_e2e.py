"""End to end through a real worker process: every applicant ends in HBase or the DLQ, once, through crashes and outages."""

from __future__ import annotations

import signal
import time

import pytest

from deploy.services import wait_for


def test_5000_applicants_reconcile(topology, workload):
    msgs, ids, dirty = workload(5000)
    topology.produce(msgs)
    # Bytes that are no JSON object at all, published straight onto applicants.raw.
    extra = [(b"900001", b"\x00\x01 not json"), (b"900002", b'"a string"'), (b"900003", b"")]
    topology.produce(extra)
    topology.worker()
    expected = ids | {900001, 900002, 900003}
    topology.wait_accounted(expected)
    result = topology.reconcile(expected)
    assert result["dlq_ids"] == dirty | {900001, 900002, 900003}
    reasons = {d["id"]: d for d in result["dlq"]}
    assert reasons[900001]["reason"] == "not UTF-8" or reasons[900001]["reason"] == "not JSON"
    assert reasons[900002]["reason"] == "not a JSON object"
    assert reasons[900003]["reason"] == "empty message"
    huge = [d for d in result["dlq"] if d["reason"] == "payload too large"]
    assert huge and all(d["original_truncated"] and d["original_size"] > 200000 for d in huge)
    for d in result["dlq"]:
        assert d["stage"] == "filter" and d["source"]["topic"] == topology.settings.topic_raw
        assert isinstance(d["source"]["offset"], int) and d["failed_at"] > 0

    # A policy decline and a model decision read back from HBase, whole.
    rows = sorted(result["dlq_ids"] ^ expected)
    by_policy = by_model = None
    for app_id in rows[:400]:
        dec = topology.read_decision(app_id)
        if dec["decided_by"] == "policy" and by_policy is None:
            by_policy = dec
        if dec["decided_by"] == "model" and by_model is None:
            by_model = dec
    assert by_policy["decision"] == "decline" and by_policy["reasons"][0]["code"].startswith("POLICY_")
    assert by_policy["probability_of_default"] is None
    assert by_model["decision"] in ("approve", "decline") and 0 <= by_model["probability_of_default"] <= 1
    assert by_model["model_version"] and by_model["policy_version"].startswith("policy-")
    prov = by_model["provenance"]
    assert prov["topic"] == topology.settings.topic_raw and prov["source"] == "testdata"
    assert by_model["ingested_at"] <= by_model["decided_at"] <= by_model["saved_at"]


def _rows_at_least(topology, n):
    return lambda: len(topology.hbase_ids()) >= n


def test_kill_9_mid_run_then_restart(topology, workload):
    msgs, ids, dirty = workload(20000)
    topology.produce(msgs)
    worker = topology.worker()
    wait_for(_rows_at_least(topology, 1500), 90, interval=0.3, what="first rows")
    worker.kill()
    saved_at_kill = len(topology.hbase_ids())
    assert saved_at_kill < len(ids) - len(dirty), "the run finished before the kill: make it longer"
    topology.worker()
    topology.wait_accounted(ids)
    result = topology.reconcile(ids)
    assert result["dlq_ids"] == dirty


def test_risk_api_down_for_10s(make_topology, hbase_server, own_risk_api, workload):
    topology = make_topology(hbase_server, own_risk_api)
    msgs, ids, dirty = workload(12000)
    topology.produce(msgs[:6000])
    topology.worker()
    wait_for(_rows_at_least(topology, 500), 90, interval=0.3, what="first rows")
    own_risk_api.stop()
    topology.produce(msgs[6000:])          # arrives while the risk API is down
    time.sleep(10)
    stalled = set(topology.hbase_ids())
    # Policy declines need no score and may pass; no second-wave applicant was scored during the outage.
    assert all(topology.read_decision(i)["decided_by"] == "policy" for i in stalled if i > 6000)
    own_risk_api.start(timeout=60)
    topology.wait_accounted(ids)
    result = topology.reconcile(ids)
    assert result["dlq_ids"] == dirty
    assert "risk API POST" in "\n".join(w.tail_log(100000) for w in topology.workers)


def test_hbase_down_for_10s(make_topology, own_hbase, risk_api, workload):
    topology = make_topology(own_hbase, risk_api)
    msgs, ids, dirty = workload(12000)
    topology.produce(msgs[:6000])
    topology.worker()
    wait_for(_rows_at_least(topology, 500), 90, interval=0.3, what="first rows")
    own_hbase.kill()                       # kill -9: the emulator, or Apache HBase's Thrift server
    topology.produce(msgs[6000:])          # arrives while HBase is down
    time.sleep(10)
    own_hbase.start()
    topology.wait_accounted(ids)
    result = topology.reconcile(ids)
    assert result["dlq_ids"] == dirty
    assert "HBase write of" in "\n".join(w.tail_log(100000) for w in topology.workers)


def test_workers_joining_and_leaving_mid_run_lose_nothing(topology, workload):
    """Rebalances while batches are in flight: two workers join a running one, then both stop with SIGTERM
    in the middle of their batches (faust acks a cancelled batch; its offsets must not move)."""
    msgs, ids, dirty = workload(40000)
    topology.produce(msgs[:10000])
    topology.worker()
    wait_for(_rows_at_least(topology, 1000), 90, interval=0.2, what="first rows")
    second, third = topology.worker(), topology.worker()
    for w in (second, third):
        wait_for(lambda: "[^Worker]: Ready" in w.tail_log(2000), 90, interval=0.2, what="the new workers ready")
    topology.produce(msgs[10000:])
    for w in (second, third):
        w.send_signal(signal.SIGTERM)
    assert len(topology.hbase_ids()) < len(ids) - len(dirty), "the run finished before the workers left"
    for w in (second, third):
        w.stop()        # waits for the SIGTERM shutdown
    topology.wait_accounted(ids)
    result = topology.reconcile(ids)
    assert result["dlq_ids"] == dirty
