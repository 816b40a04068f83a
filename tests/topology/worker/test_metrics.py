"""topology.worker.metrics: what a stage's meter records from a delivered batch, and the batch histogram."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from credit_core.messages.dead_letter import dead_letter
from topology.stages.batching import CLEAN, DECLINED_POLICY, ELIGIBLE
from topology.worker.metrics import (LATENCY_BUCKETS, BatchHistogram, NullStageMeter, WorkerMetrics,
                                     dead_letter_reasons)


def _dead(reason: str, n: int = 1) -> list:
    return [dead_letter(stage="filter", reason=reason, errors=[], original=b"x" * 10, key=b"7", src={"partition": 1},
                        app_id=7, partitions=4, max_original=100) for _ in range(n)]


def sample(registry: CollectorRegistry, name: str, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_delivered_batch_counts_in_and_out_by_outcome_and_reason():
    registry = CollectorRegistry()
    meter = WorkerMetrics(registry).stage("decision")
    tally = meter.tally()
    tally[(ELIGIBLE, "")] += 7
    tally[(DECLINED_POLICY, "POLICY_GRADE")] += 2
    tally[(DECLINED_POLICY, "POLICY_MIN_INCOME")] += 1
    meter.delivered(tally, _dead("bad internal item", 2) + _dead("internal error"))
    meter.delivered(None, _dead("internal error"))       # the safety net's dead letters alone
    assert sample(registry, "credit_stage_records_in_total", stage="decision") == 14
    out = lambda outcome, reason="": sample(registry, "credit_stage_records_out_total", stage="decision",  # noqa
                                            outcome=outcome, reason=reason)
    assert out(ELIGIBLE) == 7 and out(DECLINED_POLICY, "POLICY_GRADE") == 2
    assert out(DECLINED_POLICY, "POLICY_MIN_INCOME") == 1
    assert out("dead_lettered", "bad internal item") == 2 and out("dead_lettered", "internal error") == 2
    meter.batch(0.02)
    meter.batch(0.3)
    assert sample(registry, "credit_stage_batch_duration_seconds_count", stage="decision") == 2
    assert sample(registry, "credit_stage_batch_duration_seconds_bucket", stage="decision", le="0.025") == 1


def test_dead_letter_reasons_are_read_back_and_bounded():
    reasons = dead_letter_reasons(_dead("not JSON", 3) + [(0, None, b"not a dead letter")] + _dead("x" * 500))
    assert reasons == Counter({"not JSON": 3, "unknown": 1, "x" * 100: 1})


def test_retries_are_counted_by_stage_and_cause():
    registry = CollectorRegistry()
    meter = WorkerMetrics(registry).stage("save")
    hook = meter.retry_hook("hbase")
    hook(OSError("down"))
    hook(OSError("down"))
    meter.retry_hook("broker")(RuntimeError("x"))
    assert sample(registry, "credit_retries_total", stage="save", cause="hbase") == 2
    assert sample(registry, "credit_retries_total", stage="save", cause="broker") == 1


def test_saved_decisions_observe_their_latency_from_the_raw_timestamp():
    registry = CollectorRegistry()
    meter = WorkerMetrics(registry).stage("save")
    saved_at = 1_700_000_010_000
    decisions = [{"provenance": {"timestamp_ms": saved_at - ms}} for ms in (5, 40, 2_000, 700_000)]
    decisions.append({"provenance": {"timestamp_ms": saved_at + 50}})     # a clock ahead: 0, not negative
    decisions.append({"provenance": {"timestamp_ms": None}})             # no timestamp: not observed
    meter.saved(saved_at, decisions)
    name = "credit_end_to_end_latency_seconds"
    assert sample(registry, f"{name}_count") == 5
    assert sample(registry, f"{name}_sum") == pytest.approx((5 + 40 + 2_000 + 700_000) / 1000)
    assert sample(registry, f"{name}_bucket", le="0.01") == 2
    assert sample(registry, f"{name}_bucket", le="0.05") == 3
    assert sample(registry, f"{name}_bucket", le="2.5") == 4
    assert sample(registry, f"{name}_bucket", le="600.0") == 4
    assert sample(registry, f"{name}_bucket", le="+Inf") == 5


def test_saved_decisions_are_counted_by_grade_and_an_unknown_grade_is_other():
    registry = CollectorRegistry()
    meter = WorkerMetrics(registry).stage("save")
    decisions = [{"decision": "approve", "decided_by": "model", "applicant": {"grade": "A"}, "provenance": {}}] * 3
    decisions += [{"decision": "decline", "decided_by": "policy", "applicant": {"grade": "F"}, "provenance": {}}]
    decisions += [{"decision": "decline", "decided_by": "model", "applicant": {"grade": "<script>"},
                   "provenance": {}}]
    meter.saved(1_700_000_000_000, decisions)
    name = "credit_decisions_saved_total"
    assert sample(registry, name, decision="approve", decided_by="model", grade="A") == 3
    assert sample(registry, name, decision="decline", decided_by="policy", grade="F") == 1
    assert sample(registry, name, decision="decline", decided_by="model", grade="other") == 1


def test_the_batch_histogram_buckets_as_prometheus_clients_histogram_does():
    rng = random.Random(7)
    values = [rng.choice(LATENCY_BUCKETS) for _ in range(50)] + [rng.uniform(0, 900) for _ in range(500)] + [0.0]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("lat_seconds", "x", LATENCY_BUCKETS, registry=ours)
    reference = Histogram("lat_seconds", "x", buckets=LATENCY_BUCKETS, registry=theirs)
    batch.observe_many(np.array(values[:200]))
    batch.observe_many(np.array(values[200:]))
    batch.observe_many(np.array([]))
    for v in values:
        reference.observe(v)
    for le in [str(float(b)) for b in LATENCY_BUCKETS] + ["+Inf"]:
        assert sample(ours, "lat_seconds_bucket", le=le) == sample(theirs, "lat_seconds_bucket", le=le), le
    assert sample(ours, "lat_seconds_count") == sample(theirs, "lat_seconds_count") == len(values)
    assert sample(ours, "lat_seconds_sum") == pytest.approx(sample(theirs, "lat_seconds_sum"))


def test_the_null_meter_records_nothing_and_asks_for_no_tally():
    meter = NullStageMeter("filter")
    assert meter.tally() is None and meter.retry_hook("broker") is None and not meter.enabled
    meter.delivered(Counter({(CLEAN, ""): 3}), _dead("x"))
    meter.batch(1.0)
    meter.saved(1, [{"provenance": {"timestamp_ms": 0}}])
