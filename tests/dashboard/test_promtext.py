"""Reading the exposition text the processes serve into the dashboard's snapshots."""

from __future__ import annotations

import pytest

from dashboard import promtext
from dashboard.promtext import labels_of
from tests.dashboard.metrics_lib import WorkerMetrics


def test_a_worker_exposition_becomes_a_snapshot_of_the_catalogue_series():
    w = WorkerMetrics()
    w.records_in.labels(stage="filter").inc(7)
    w.records_out.labels(stage="filter", outcome="dead_lettered", reason="invalid applicant").inc(2)
    w.records_out.labels(stage="filter", outcome="clean", reason="").inc(5)
    w.latency.observe(0.2)
    snap = promtext.parse(w.text() + "# HELP other_metric x\n# TYPE other_metric gauge\nother_metric 3\n")
    assert snap["credit_stage_records_in_total"] == {labels_of(stage="filter"): 7.0}
    assert promtext.total(snap, "credit_stage_records_out_total") == 7.0
    assert promtext.total(snap, "credit_stage_records_out_total", outcome="dead_lettered") == 2.0
    assert promtext.grouped(snap, "credit_stage_records_out_total", "outcome") == {"dead_lettered": 2.0, "clean": 5.0}
    assert promtext.grouped(snap, "credit_stage_records_out_total", ("stage", "reason")) == {
        ("filter", "invalid applicant"): 2.0, ("filter", ""): 5.0}
    buckets = snap["credit_end_to_end_latency_seconds_bucket"]
    assert buckets[labels_of(le="0.25")] == 1.0 and buckets[labels_of(le="0.1")] == 0.0
    assert buckets[labels_of(le="+Inf")] == 1.0
    assert "other_metric" not in snap                                   # only what the dashboard uses
    assert promtext.total(snap, "credit_nothing") is None


def test_unset_gauges_are_dropped_and_garbage_is_an_error():
    snap = promtext.parse("# TYPE credit_x gauge\ncredit_x NaN\ncredit_y 1\n")
    assert "credit_x" not in snap and snap["credit_y"] == {(): 1.0}
    with pytest.raises(ValueError):
        promtext.parse("credit_x{stage=\"a\" 1\n")
