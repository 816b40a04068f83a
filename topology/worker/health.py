"""What a worker's health says of each stage: the pure rules (state, lag, backlog) and the per-stage bookkeeping.

A stage is ``crashed`` when one of its tasks (a faust actor, the RawReader's
loop) has ended or is gone; ``stalled`` when it has work waiting (lag where
the broker's end offsets are reliable, else messages it fetched and has not
processed) and has processed no record for STALL_SECONDS while that work
waited; ``running`` when it has work or processed a record within
STALL_SECONDS; ``idle`` otherwise.  GET /health answers 503 when any stage is
stalled or crashed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

logger = logging.getLogger(__name__)

RUNNING, IDLE, STALLED, CRASHED = "running", "idle", "stalled", "crashed"
STATES = (RUNNING, IDLE, STALLED, CRASHED)
FAILING_STATES = frozenset({STALLED, CRASHED})
MAX_ERROR_CHARS = 300
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def public_text(text: str) -> str:
    """An error message fit for /health: credentials in URLs (``scheme://user:secret@``) masked, cut short."""
    text = _USERINFO.sub("***@", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


def lag_records(highwater: int | None, committed: int | None) -> int | None:
    """High watermark minus committed offset; None when the high watermark is unknown.

    Nothing committed (None; faust also keeps a committed 0 as None) counts
    from offset 0: the whole partition is waiting.
    """
    if highwater is None or highwater < 0:
        return None
    return max(0, highwater - (committed if committed is not None and committed > 0 else 0))


def pending_records(read_offset: int | None, committed: int | None) -> int:
    """Messages a consumer has read (up to ``read_offset``, the last one read) but not committed yet."""
    if read_offset is None or read_offset < 0:
        return 0
    return max(0, read_offset + 1 - (committed if committed is not None and committed > 0 else 0))


def classify(*, crashed: bool, backlog: int | None, since_last_record: float | None, backlog_age: float | None,
             stall_seconds: float) -> str:
    """The state of a stage from what is known of it now.

    ``backlog``: records waiting (lag, or fetched and not processed), None
    when unknown; ``since_last_record``: seconds since the stage last
    processed a record (None: never); ``backlog_age``: for how long a backlog
    has been seen without a break (None: none now).
    """
    if crashed:
        return CRASHED
    if backlog:
        waited = backlog_age if backlog_age is not None else 0.0
        quiet = since_last_record is None or since_last_record >= stall_seconds
        return STALLED if quiet and waited >= stall_seconds else RUNNING
    if since_last_record is not None and since_last_record < stall_seconds:
        return RUNNING
    return IDLE


@dataclass(frozen=True)
class StageReport:
    """One stage in /health."""

    state: str
    lag: int | None
    seconds_since_last_record: float | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        since = self.seconds_since_last_record
        return {"state": self.state, "lag": self.lag,
                "seconds_since_last_record": round(since, 3) if since is not None else None, "error": self.error}


def health_response(stages: Mapping[str, StageReport], *, lag_available: bool,
                    lag_unavailable_reason: str | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of GET /health: 503 when any stage is stalled or crashed."""
    failing = any(r.state in FAILING_STATES for r in stages.values())
    body = {"status": "failing" if failing else "ok",
            "stages": {name: r.as_json() for name, r in stages.items()},
            "lag_available": lag_available}
    if not lag_available:
        body["lag_unavailable_reason"] = lag_unavailable_reason
    return (503 if failing else 200), body


class StageWatch:
    """What this worker knows of one stage: its running tasks, why the last one ended, its last record, its backlog.

    The stage's runner calls ``task_started`` / ``task_ended`` around its
    loop and ``processed`` after each delivered batch; ``observe`` is called
    with the stage's backlog each time health is computed.
    """

    def __init__(self, stage: str, *, topic: str, tasks_expected: int = 1):
        self.stage = stage
        self.topic = topic
        self.tasks_expected = tasks_expected
        self._tasks: set[asyncio.Task] = set()
        self.started = False
        self.last_error: str | None = None
        self.last_record_at: float | None = None     # time.monotonic()
        self._backlog_since: float | None = None

    def task_started(self, task: asyncio.Task | None = None) -> None:
        task = task or asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.started = True

    def task_ended(self, why: str, task: asyncio.Task | None = None) -> None:
        self._tasks.discard(task or asyncio.current_task())
        self.last_error = public_text(why)

    def processed(self) -> None:
        self.last_record_at = time.monotonic()

    def live_tasks(self) -> int:
        for task in [t for t in self._tasks if t.done()]:
            self._tasks.discard(task)
            if self.last_error is None:
                self.last_error = "its task ended without a word"
        return len(self._tasks)

    def crash_reason(self) -> str | None:
        """Why the stage is crashed (a task of it ended or is gone), or None; a stage not started yet is not."""
        if not self.started:
            return None
        live = self.live_tasks()
        if live >= self.tasks_expected:
            return None
        return f"{self.tasks_expected - live} of {self.tasks_expected} task(s) gone: {self.last_error or 'gone'}"

    def since_last_record(self, now: float) -> float | None:
        return None if self.last_record_at is None else max(0.0, now - self.last_record_at)

    def observe(self, backlog: int | None, now: float) -> float | None:
        """Note the backlog seen now; returns for how long a backlog has been seen without a break (None: none)."""
        if not backlog:
            if backlog is not None:
                self._backlog_since = None
            return None
        if self._backlog_since is None:
            self._backlog_since = now
        return now - self._backlog_since

    def report(self, *, backlog: int | None, lag: int | None, stall_seconds: float,
               now: float | None = None) -> StageReport:
        """The stage's StageReport, given its backlog now (for stall detection) and its lag (None: unknown)."""
        now = time.monotonic() if now is None else now
        crash = self.crash_reason()
        age = self.observe(backlog, now)
        since = self.since_last_record(now)
        state = classify(crashed=crash is not None, backlog=backlog, since_last_record=since, backlog_age=age,
                         stall_seconds=stall_seconds)
        error = crash
        if state == STALLED:
            error = (f"{backlog} record(s) waiting for {age:.0f}s and "
                     + ("no record processed yet" if since is None else f"no record processed for {since:.0f}s"))
        return StageReport(state=state, lag=lag, seconds_since_last_record=since, error=error)


def total(values: Iterable[int | None]) -> int | None:
    """The sum (0 for no parts: no partition of this worker), or None when any part is unknown."""
    values = list(values)
    if any(v is None for v in values):
        return None
    return sum(values)
