"""topology.worker.health: the state rules, the lag arithmetic and a stage's bookkeeping of its tasks."""

from __future__ import annotations

import asyncio
import time

import pytest

from topology.worker.health import (CRASHED, IDLE, RUNNING, STALLED, StageReport, StageWatch, classify,
                                    health_response, lag_records, pending_records, public_text, total)


def test_lag_is_the_high_watermark_minus_the_committed_offset():
    assert lag_records(120, 100) == 20
    assert lag_records(100, 100) == 0
    assert lag_records(50, None) == 50          # nothing committed: the whole partition waits
    assert lag_records(50, 0) == 50             # faust keeps a committed 0 as None; either way from 0
    assert lag_records(90, 100) == 0            # a commit seen before the end offset it passed: never negative
    assert lag_records(None, 10) is None and lag_records(-1, 10) is None   # unknown end offset


def test_pending_counts_what_was_read_and_not_committed():
    assert pending_records(None, 5) == 0        # nothing read since the assignment
    assert pending_records(9, 10) == 0          # read up to 9, committed past it
    assert pending_records(14, 10) == 5
    assert pending_records(4, None) == 5


def test_total_is_unknown_when_a_part_is():
    assert total([1, 2, 0]) == 3 and total([]) == 0 and total([1, None]) is None


@pytest.mark.parametrize("inputs, state", [
    (dict(crashed=True, backlog=0, since_last_record=1.0, backlog_age=None), CRASHED),
    (dict(crashed=True, backlog=None, since_last_record=None, backlog_age=None), CRASHED),
    # Nothing to do: idle, or running while it processed something lately.
    (dict(crashed=False, backlog=0, since_last_record=None, backlog_age=None), IDLE),
    (dict(crashed=False, backlog=0, since_last_record=31.0, backlog_age=None), IDLE),
    (dict(crashed=False, backlog=0, since_last_record=2.0, backlog_age=None), RUNNING),
    (dict(crashed=False, backlog=None, since_last_record=2.0, backlog_age=None), RUNNING),   # lag unknown
    # Work waiting: stalled only when it has waited STALL_SECONDS and no record was processed for as long.
    (dict(crashed=False, backlog=500, since_last_record=1.0, backlog_age=100.0), RUNNING),
    (dict(crashed=False, backlog=500, since_last_record=600.0, backlog_age=0.0), RUNNING),   # it just arrived
    (dict(crashed=False, backlog=500, since_last_record=600.0, backlog_age=29.0), RUNNING),
    (dict(crashed=False, backlog=500, since_last_record=600.0, backlog_age=30.0), STALLED),
    (dict(crashed=False, backlog=1, since_last_record=None, backlog_age=45.0), STALLED),     # never processed
])
def test_classify(inputs, state):
    assert classify(stall_seconds=30.0, **inputs) == state


def test_health_response_is_503_when_a_stage_is_stalled_or_crashed():
    ok = StageReport(state=RUNNING, lag=3, seconds_since_last_record=0.1234, error=None)
    idle = StageReport(state=IDLE, lag=0, seconds_since_last_record=None, error=None)
    status, body = health_response({"filter": ok, "save": idle}, lag_available=True, lag_unavailable_reason=None)
    assert status == 200 and body == {
        "status": "ok", "lag_available": True,
        "stages": {"filter": {"state": "running", "lag": 3, "seconds_since_last_record": 0.123, "error": None},
                   "save": {"state": "idle", "lag": 0, "seconds_since_last_record": None, "error": None}}}
    for bad in (STALLED, CRASHED):
        failing = StageReport(state=bad, lag=None, seconds_since_last_record=None, error="why")
        status, body = health_response({"filter": ok, "submit": failing}, lag_available=False,
                                        lag_unavailable_reason="no end offsets")
        assert status == 503 and body["status"] == "failing" and body["stages"]["submit"]["state"] == bad
        assert body["lag_available"] is False and body["lag_unavailable_reason"] == "no end offsets"


def test_a_stage_is_crashed_when_fewer_of_its_tasks_run_than_it_has():
    async def run():
        watch = StageWatch("submit", topic="eligible", tasks_expected=2)
        assert watch.crash_reason() is None            # not started yet: not crashed (readiness says so)
        release = asyncio.Event()

        async def actor(fail: bool):
            watch.task_started()
            try:
                await release.wait()
                if fail:
                    raise RuntimeError("boom")
            except BaseException as exc:
                watch.task_ended(f"{type(exc).__name__}: {exc}")
                raise
            else:
                watch.task_ended("its stream ended")

        tasks = [asyncio.create_task(actor(fail)) for fail in (False, True)]
        await asyncio.sleep(0)
        assert watch.live_tasks() == 2 and watch.crash_reason() is None
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        reason = watch.crash_reason()
        assert reason.startswith("2 of 2 task(s) gone") and "boom" in reason
        report = watch.report(backlog=0, lag=0, stall_seconds=30.0)
        assert report.state == CRASHED and report.error == reason

        # A task that ends without telling (its coroutine never reached its finally) is gone too.
        lost = StageWatch("save", topic="scored")
        task = asyncio.create_task(asyncio.sleep(0))
        lost.task_started(task)
        await task
        assert "without a word" in lost.crash_reason()
    asyncio.run(run())


def test_a_backlog_must_wait_stall_seconds_without_progress_to_be_a_stall():
    watch = StageWatch("decision", topic="clean")
    watch.task_started(_FakeTask())
    watch.last_record_at = 0.0
    states = [watch.report(backlog=b, lag=b, stall_seconds=10.0, now=t).state
              for t, b in ((100.0, 5), (105.0, 5), (110.0, 5), (111.0, 0), (112.0, 7), (121.0, 7), (122.0, 7))]
    # At 100 it is seen for the first time (running), stalled once seen for 10 s; a break resets the clock.
    assert states == [RUNNING, RUNNING, STALLED, IDLE, RUNNING, RUNNING, STALLED]
    watch.processed()     # progress: running again
    assert watch.report(backlog=7, lag=7, stall_seconds=10.0, now=time.monotonic()).state == RUNNING
    stalled = StageWatch("x", topic="t")
    stalled.task_started(_FakeTask())
    stalled.report(backlog=3, lag=None, stall_seconds=1.0, now=10.0)
    report = stalled.report(backlog=3, lag=None, stall_seconds=1.0, now=12.0)
    assert report.state == STALLED and report.error == "3 record(s) waiting for 2s and no record processed yet"


class _FakeTask:
    def done(self) -> bool:
        return False


def test_errors_shown_by_health_mask_credentials_and_are_short():
    text = public_text("ClientConnectorError: cannot reach http://bank:s3cret@risk:5002/api/v1/score " + "x" * 900)
    assert "s3cret" not in text and "http://***@risk:5002" in text and len(text) <= 303
    assert public_text("RuntimeError: boom") == "RuntimeError: boom"
