"""The dashboard's figures from scrape histories with known numbers (real exposition text, no server)."""

from __future__ import annotations

import math

import pytest

from dashboard import figures, promtext, views
from dashboard.history import History
from tests.dashboard.metrics_lib import ProducerMetrics, RiskApiMetrics, WorkerMetrics

T0 = 1_700_000_000.0
HORIZON = 900


def health(lag: dict[str, int | None], *, available: bool = True, state: str = "running") -> dict:
    return {"status": "ok", "lag_available": available,
            "stages": {s: {"state": state, "lag": lag.get(s), "seconds_since_last_record": 0.5, "error": None}
                       for s in views.STAGES}}


def test_rates_counters_lag_and_latency_of_two_workers():
    history = History([("worker-1", "u1"), ("worker-2", "u2"), ("producer", "u3")], HORIZON)
    workers = [WorkerMetrics(), WorkerMetrics()]
    producer = ProducerMetrics()
    # 60 s of scrapes, one a second: worker-1 takes 10 applicants/s into filter, worker-2 30/s.
    for second in range(61):
        t = T0 + second
        if second:
            workers[0].records_in.labels(stage="filter").inc(10)
            workers[1].records_in.labels(stage="filter").inc(30)
            producer.published.inc(40)
        for name, w, lag in (("worker-1", workers[0], 100), ("worker-2", workers[1], 5)):
            history.record(name, t, promtext.parse(w.text()), health=health({"filter": lag}), health_code=200)
        history.record("producer", t, promtext.parse(producer.text()))
    for w, outcome, reason, n in ((workers[0], "approved", "", 3), (workers[1], "approved", "", 4),
                                  (workers[0], "declined_model", "", 2),
                                  (workers[1], "declined_policy", "POLICY_GRADE", 5),
                                  (workers[1], "dead_lettered", "invalid applicant", 6),
                                  (workers[0], "saved", "", 14)):
        w.records_out.labels(stage="x", outcome=outcome, reason=reason).inc(n)
    # latencies: 10 observations at 0.04 s, 10 at 0.4 s, all in the last minute
    for value in [0.04] * 10 + [0.4] * 10:
        workers[0].latency.observe(value)
    for _ in range(20):
        workers[1].batch.labels(stage="filter").observe(0.02)
    now = T0 + 61
    for name, w in (("worker-1", workers[0]), ("worker-2", workers[1])):
        history.record(name, now, promtext.parse(w.text()), health=health({"filter": 100 if name == "worker-1" else 5}),
                       health_code=200)
    history.record("producer", now, promtext.parse(producer.text()))

    body = views.pipeline(history.view(), now, HORIZON, stale_after=5)
    c = body["counters"]
    counted = (c["approved"], c["declined_model"], c["declined_policy"], c["saved"], c["dead_lettered"])
    assert counted == (7, 2, 5, 14, 6)
    assert c["decided"] == 14 and c["published"] == 2400 and c["records_in"]["filter"] == 2400
    # the last 5-second point: 40 applicants/s into filter, 40/s published
    tp = body["throughput"]
    assert tp["series"]["filter"][-2] == pytest.approx(40.0)
    assert tp["series"]["published"][-2] == pytest.approx(40.0)
    assert tp["current"]["filter"] == pytest.approx(36.0)          # 9 increments of 40 in the last 10 s
    assert tp["series"]["filter"][0] == 0.0                         # before the first scrape: nothing
    assert tp["series"]["save"][-2] == 0.0
    stages = {s["stage"]: s for s in body["stages"]}
    assert stages["filter"]["lag"] == 105 and stages["filter"]["state"] == "running"
    assert stages["filter"]["batch_p95_seconds"] == pytest.approx(0.01 + 0.015 * 19 / 20, abs=1e-4)
    assert stages["save"]["batch_p95_seconds"] is None
    assert body["lag"]["available"] is True and body["lag"]["series"]["filter"][-1] == 105
    lat = body["latency"]
    assert lat["window"] == "last minute" and lat["count"] == 20
    assert lat["p50"] == pytest.approx(0.05)                        # rank 10: the top of (0.025, 0.05]
    assert lat["p95"] == pytest.approx(0.25 + 0.25 * 9 / 10)        # rank 19 in (0.25, 0.5]
    assert lat["series"]["p50"][-1] == pytest.approx(0.05)
    assert {s["name"]: s["up"] for s in body["services"]} == {"worker-1": True, "worker-2": True, "producer": True}
    assert body["dead_letters_counted"] == [{"stage": "x", "reason": "invalid applicant", "count": 6}]


def test_a_restarted_worker_counts_from_zero_and_a_silent_one_is_down():
    history = History([("worker-1", "u")], HORIZON)
    first, second = WorkerMetrics(), WorkerMetrics()
    first.records_in.labels(stage="save").inc(1000)
    history.record("worker-1", T0, promtext.parse(first.text()))
    first.records_in.labels(stage="save").inc(50)
    history.record("worker-1", T0 + 1, promtext.parse(first.text()))
    second.records_in.labels(stage="save").inc(20)              # restarted: a new process counts from zero
    history.record("worker-1", T0 + 2, promtext.parse(second.text()))
    history.record("worker-1", T0 + 3, None, error="connection refused")
    body = views.pipeline(history.view(), T0 + 3, HORIZON, stale_after=5)
    assert sum(body["throughput"]["series"]["save"]) * views.THROUGHPUT_STEP == pytest.approx(70)
    service = body["services"][0]
    assert service["up"] is False and service["error"] == "connection refused"
    assert body["counters"]["records_in"]["save"] == 20


def test_lag_is_said_to_be_unavailable_on_tansu():
    history = History([("worker-1", "u")], HORIZON)
    w = WorkerMetrics()
    w.lag_available.set(0)
    history.record("worker-1", T0, promtext.parse(w.text()), health=health({}, available=False), health_code=200)
    body = views.pipeline(history.view(), T0, HORIZON, stale_after=5)
    assert body["lag"]["available"] is False
    assert all(v is None for v in body["lag"]["series"]["filter"])
    # the metric alone says so too
    history = History([("worker-1", "u")], HORIZON)
    history.record("worker-1", T0, promtext.parse(w.text()))
    assert views.pipeline(history.view(), T0, HORIZON, stale_after=5)["lag"]["available"] is False


def test_a_crashed_stage_wins_over_running_ones():
    history = History([("worker-1", "u"), ("worker-2", "v")], HORIZON)
    w = WorkerMetrics()
    history.record("worker-1", T0, promtext.parse(w.text()), health=health({}, state="running"), health_code=200)
    bad = health({}, state="crashed")
    bad["status"] = "failing"
    history.record("worker-2", T0, promtext.parse(w.text()), health=bad, health_code=503)
    body = views.pipeline(history.view(), T0, HORIZON, stale_after=5)
    assert {s["stage"]: s["state"] for s in body["stages"]}["submit"] == "crashed"
    assert [s["health"]["status"] for s in body["services"]] == ["ok", "failing"]


REFERENCE = {f"{i / 10:.1f}": share for i, share in zip(range(1, 11),
                                                         [0.3, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.02])}


def test_decisions_approval_scores_and_psi():
    history = History([("worker-1", "u"), ("risk-api", "r")], HORIZON)
    w = WorkerMetrics()
    risk = RiskApiMetrics(REFERENCE)
    history.record("worker-1", T0, promtext.parse(w.text()))
    history.record("risk-api", T0, promtext.parse(risk.text()))
    out = w.records_out
    out.labels(stage="submit", outcome="approved", reason="").inc(60)
    out.labels(stage="submit", outcome="declined_model", reason="").inc(20)
    out.labels(stage="decision", outcome="declined_policy", reason="POLICY_GRADE").inc(15)
    out.labels(stage="decision", outcome="declined_policy", reason="POLICY_MIN_INCOME").inc(5)
    out.labels(stage="filter", outcome="clean", reason="").inc(100)
    saved = w.saved_by_grade
    saved.labels(decision="approve", decided_by="model", grade="A").inc(30)
    saved.labels(decision="decline", decided_by="model", grade="A").inc(10)
    saved.labels(decision="approve", decided_by="model", grade="B").inc(30)
    saved.labels(decision="decline", decided_by="model", grade="B").inc(10)
    saved.labels(decision="decline", decided_by="policy", grade="E").inc(15)
    saved.labels(decision="decline", decided_by="policy", grade="B").inc(5)
    # live scores: 50 in (0, 0.1], 50 in (0.1, 0.2] (the reference says 30 % and 20 %)
    for value in [0.05] * 50 + [0.15] * 50:
        risk.scores.labels(model_version="m-1").observe(value)
    risk.decisions.labels(outcome="approved", model_version="m-1").inc(60)
    history.record("worker-1", T0 + 10, promtext.parse(w.text()))
    history.record("risk-api", T0 + 10, promtext.parse(risk.text()))

    body = views.business(history.view(), T0 + 10, HORIZON)
    dec = body["decisions"]
    assert dec["totals"] == {"approved": 60, "declined by model": 20, "declined by policy: POLICY_GRADE": 15,
                             "declined by policy: POLICY_MIN_INCOME": 5}
    assert dec["series"]["approved"][-1] == 60 and sum(dec["series"]["approved"]) == 60
    a = body["approval"]
    assert a["overall"] == 0.6 and a["scored"] == 0.75 and a["policy_share"] == 0.2
    assert a["policy_declines_by_rule"] == {"POLICY_GRADE": 15, "POLICY_MIN_INCOME": 5}
    assert a["by_grade"] == {"A": {"approved": 30, "declined": 10, "rate": 0.75},
                             "B": {"approved": 30, "declined": 15, "rate": 0.6667},
                             "E": {"approved": 0, "declined": 15, "rate": 0.0}}
    assert a["risk_api_decisions"] == {"approved": 60}
    s = body["scores"]
    assert s["model_version"] == "m-1" and s["count"] == 100 and s["basis"] == "the last 15 minutes"
    assert s["bins"][:2] == ["0.1", "0.2"] and s["live_share"][:3] == [0.5, 0.5, 0.0]
    expected = figures.psi([50, 50] + [0] * 8, list(REFERENCE.values()))
    by_hand = (0.5 - 0.3) * math.log(0.5 / 0.3) + (0.5 - 0.2) * math.log(0.5 / 0.2) + sum(
        (1e-4 - e) * math.log(1e-4 / e) for e in list(REFERENCE.values())[2:])
    assert s["psi"] == pytest.approx(by_hand, abs=1e-4) and expected == pytest.approx(by_hand)
    assert s["band"] == "shift"


def test_scores_before_the_window_fall_back_to_since_the_api_started():
    history = History([("risk-api", "r")], HORIZON)
    risk = RiskApiMetrics(REFERENCE)
    for value in [0.05] * 30 + [0.15] * 20 + [0.25] * 10 + [0.35] * 10 + [0.45] * 10 + [0.55] * 5 + \
            [0.65] * 5 + [0.75] * 5 + [0.85] * 3 + [0.95] * 2:
        risk.scores.labels(model_version="m-1").observe(value)
    history.record("risk-api", T0, promtext.parse(risk.text()))
    history.record("risk-api", T0 + 1, promtext.parse(risk.text()))
    s = views.business(history.view(), T0 + 1, HORIZON)["scores"]
    assert s["basis"] == "since the risk API started" and s["count"] == 100
    assert s["psi"] == pytest.approx(0.0, abs=1e-9) and s["band"] == "stable"


def test_latency_seen_before_the_first_scrape_is_shown_since_the_workers_started():
    history = History([("worker-1", "u")], HORIZON)
    w = WorkerMetrics()
    for value in (0.3, 0.3, 3.0):
        w.latency.observe(value)
    history.record("worker-1", T0, promtext.parse(w.text()))
    history.record("worker-1", T0 + 1, promtext.parse(w.text()))
    lat = views.pipeline(history.view(), T0 + 1, HORIZON, stale_after=5)["latency"]
    assert lat["window"] == "since the workers started" and lat["count"] == 3
    assert lat["p50"] == pytest.approx(0.25 + 0.25 * (1.5 - 0) / 2)      # rank 1.5 of 2 in (0.25, 0.5]
    assert lat["p99"] == pytest.approx(2.5 + 2.5 * (2.97 - 2) / 1)        # rank 2.97 in (2.5, 5.0]
    assert all(v is None for v in lat["series"]["p50"])                    # nothing observed while watched
