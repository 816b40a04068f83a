"""Counts the pipeline's outcomes by reading the `decisions` and `applicants.dlq` topics from the start."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from typing import Callable

import click
import orjson

logger = logging.getLogger(__name__)

DEFAULT_DECISIONS_TOPIC = "decisions"      # DECISIONS_TOPIC
DEFAULT_DLQ_TOPIC = "applicants.dlq"       # DLQ_TOPIC
PLAIN_PROGRESS_EVERY = 5.0                 # seconds between progress lines when stderr is not a terminal


class OutcomeTally:
    """A background consumer that keeps one outcome per application id (replays count once)."""

    def __init__(self, bootstrap: str, *, decisions_topic: str | None = None, dlq_topic: str | None = None):
        if not isinstance(bootstrap, str) or ":" not in bootstrap:
            raise ValueError(f"bootstrap must be 'host:port', got {bootstrap!r}")
        self.bootstrap = bootstrap
        self.decisions_topic = decisions_topic or os.environ.get("DECISIONS_TOPIC", DEFAULT_DECISIONS_TOPIC)
        self.dlq_topic = dlq_topic or os.environ.get("DLQ_TOPIC", DEFAULT_DLQ_TOPIC)
        self._lock = threading.Lock()
        self._decisions: dict[object, tuple[str, str]] = {}   # id -> (decision, decided_by)
        self._dlq: dict[object, object] = {}                  # origin -> id (None when unknown)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="outcome-tally", daemon=True)

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "OutcomeTally":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:  # surfaced by wait_for
            self._error = exc

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            self.decisions_topic, self.dlq_topic,
            bootstrap_servers=self.bootstrap,
            group_id=f"outcome-tally-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            metadata_max_age_ms=2000,
        )
        await consumer.start()
        try:
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, messages in batches.items():
                    for msg in messages:
                        self._count(tp.topic, msg)
        finally:
            await consumer.stop()

    def _count(self, topic: str, msg) -> None:
        try:
            value = orjson.loads(msg.value)
        except orjson.JSONDecodeError:
            logger.error("unreadable record on %s at offset %s", topic, msg.offset)
            return
        with self._lock:
            if topic == self.decisions_topic:
                self._decisions[value.get("id")] = (value.get("decision"), value.get("decided_by"))
            else:
                origin = value.get("source") or {}
                key = (origin.get("topic"), origin.get("partition"), origin.get("offset"))
                if key == (None, None, None):
                    key = (topic, msg.partition, msg.offset)
                self._dlq[key] = value.get("id")

    # -- reading -----------------------------------------------------------
    def accounted(self) -> int:
        with self._lock:
            return len(self._decisions) + len(self._dlq)

    def snapshot(self) -> dict:
        with self._lock:
            kinds = list(self._decisions.values())
            dlq_ids = {i for i in self._dlq.values() if i is not None}
            both = len(dlq_ids & set(self._decisions))
        return {
            "decisions": len(kinds),
            "approved": sum(1 for d, _ in kinds if d == "approve"),
            "declined_model": sum(1 for d, by in kinds if d == "decline" and by == "model"),
            "declined_policy": sum(1 for d, by in kinds if d == "decline" and by == "policy"),
            "dlq": len(self._dlq),
            "both": both,
        }

    def wait_for(self, expected: int, *, stall_timeout: float, on_stall: Callable[[], str],
                 watch: Callable[[], None] | None = None) -> None:
        """Block with a progress bar until ``expected`` applicants are accounted for; ``watch`` is called at each
        poll and may raise to end the wait early (a worker whose stage crashed...)."""
        from tqdm import tqdm

        last, last_change = 0, time.monotonic()
        last_line = 0.0
        # A live bar on a terminal; a line every few seconds in logs and CI.
        with tqdm(total=expected, unit="applicant", desc="decided", dynamic_ncols=True,
                  disable=None) as bar:
            while True:
                done = self.accounted()
                if self._error is not None:
                    raise click.ClickException(f"the outcome tally failed ({self._error!r}) at {done:,}/"
                                               f"{expected:,} applicants:\n{on_stall()}")
                if done != last:
                    bar.update(done - last)
                    last, last_change = done, time.monotonic()
                if bar.disable and time.monotonic() - last_line >= PLAIN_PROGRESS_EVERY:
                    click.echo(f"progress: {done}/{expected} applicants accounted for", err=True)
                    last_line = time.monotonic()
                if done >= expected:
                    return
                if watch is not None:
                    watch()
                if time.monotonic() - last_change > stall_timeout:
                    raise click.ClickException(
                        f"stalled at {done:,}/{expected:,} applicants (none accounted for in {stall_timeout:.0f}s):\n"
                        f"{on_stall()}")
                time.sleep(0.2)
