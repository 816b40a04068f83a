"""How the launcher reads a worker's /health answer (the worker health contract) and what it says about it."""

from __future__ import annotations

import json

from deploy.job import crash_report
from deploy.services import StageHealth, WorkerHealth, web_address


def body(**stages) -> str:
    return json.dumps({"status": "failing" if any(s["state"] in ("stalled", "crashed") for s in stages.values())
                       else "ok", "stages": stages, "lag_available": False})


def stage(state, lag=None, since=None, error=None) -> dict:
    return {"state": state, "lag": lag, "seconds_since_last_record": since, "error": error}


def test_a_healthy_worker_lists_its_stages():
    health = WorkerHealth.parse(200, body(filter=stage("running", since=0.4), decision=stage("idle", since=30.0),
                                          submit=stage("running"), save=stage("running")))
    assert health.ok and not health.failing() and not health.crashed()
    assert health.stages["decision"] == StageHealth(state="idle", seconds_since_last_record=30.0)
    assert health.describe() == ("ok: filter running; decision idle; submit running; save running; "
                                 "lag not available on this broker")


def test_crashed_and_stalled_stages_come_first_with_their_error_and_lag():
    health = WorkerHealth.parse(503, body(
        filter=stage("running"), decision=stage("crashed", error="RuntimeError: boom"),
        submit=stage("idle"), save=stage("stalled", lag=1200, since=95.4)))
    assert not health.ok
    assert list(health.failing()) == ["decision", "save"] and list(health.crashed()) == ["decision"]
    assert health.describe() == ("FAILING (HTTP 503): decision crashed (RuntimeError: boom); save stalled "
                                 "(lag 1,200, 95s since its last record); filter running; submit idle; "
                                 "lag not available on this broker")


def test_an_unreadable_answer_is_no_verdict_not_an_error():
    for status, text in ((200, "<html>faust</html>"), (404, '{"error": "not found"}'),
                         (200, '{"stages": {"filter": {"lag": 3}}}'), (200, '{"stages": ["filter"]}')):
        health = WorkerHealth.parse(status, text)
        assert health.problem and health.describe().startswith(f"no verdict: HTTP {status}"), (status, text)
        assert not health.ok and not health.crashed()


def test_the_web_address_comes_from_the_command_line_the_worker_was_started_with():
    assert web_address(["python", "-m", "faust", "worker", "--web-port", "16067", "--web-host", "127.0.0.2"]) == (
        "127.0.0.2", 16067)
    assert web_address(["python", "-m", "faust", "worker", "--web-port", "16067"]) == ("127.0.0.1", 16067)
    assert web_address(["python", "-m", "faust", "worker", "--without-web"]) is None
    assert web_address(["python", "-m", "faust", "worker", "--web-port"]) is None
    assert web_address(["gunicorn", "--bind", "127.0.0.1:5001"]) is None


def test_the_job_fails_on_a_crashed_stage_naming_the_worker_and_stage():
    crashed = WorkerHealth.parse(503, body(filter=stage("running"), submit=stage("crashed", error="KeyError: 'x'")))
    report = crash_report("worker-2", crashed)
    assert report.startswith("worker-2: stage 'submit' crashed: KeyError: 'x'."), report
    # a stalled stage may recover (the stall timeout decides); no answer is no verdict
    assert crash_report("worker-1", WorkerHealth.parse(503, body(save=stage("stalled", lag=3)))) is None
    assert crash_report("worker-1", WorkerHealth(None, {}, problem="connection refused")) is None
    assert crash_report("worker-1", None) is None
