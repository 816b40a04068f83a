"""The DLQ tail: an aiokafka consumer reading the DLQ topic into a DeadLetterStore, forever.

No consumer group, its own thread and event loop, from the topic's beginning; it never creates the topic (the
admin client looks for it first: Apache Kafka would auto-create it on a consumer's metadata request)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from credit_core.dlq.records import from_record
from dashboard.deadletters import DeadLetterStore

logger = logging.getLogger(__name__)

POLL_MS = 500                   # longest wait of one fetch round
FETCH_MAX_WAIT_MS = 100         # Tansu answers a fetch only when this expires
PARTITIONS_EVERY = 10.0         # seconds between two looks for the topic / new partitions
MAX_BACKOFF = 15.0


class DlqTail:
    """Reads ``topic`` at ``bootstrap`` into ``store``; ``start`` once, ``stop`` to end (joins the thread)."""

    def __init__(self, bootstrap: str, topic: str, store: DeadLetterStore):
        self.bootstrap = bootstrap
        self.topic = topic
        self.store = store
        self._stop = threading.Event()
        self._positions: dict[int, int] = {}     # partition -> next offset to read (kept across reconnections)
        self._thread = threading.Thread(target=self._run, name="dashboard-dlq-tail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                await self._tail()
                backoff = 1.0
            except Exception as exc:  # any broker failure: say so on the page, wait, connect again
                message = f"{type(exc).__name__}: {exc}"
                logger.warning("DLQ reader: %s (again in %.0f s)", message, backoff)
                self.store.set_status(connected=False, error=message[:300])
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.2, deadline - time.monotonic()))

    async def _tail(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                                    max_partition_fetch_bytes=8 << 20, request_timeout_ms=15000)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15000)
        await consumer.start()
        try:
            await admin.start()
            assigned: set[int] = set()
            next_look = 0.0
            while not self._stop.is_set():
                if time.monotonic() >= next_look:
                    partitions = await self._partitions(admin)
                    next_look = time.monotonic() + PARTITIONS_EVERY
                    self.store.set_status(connected=True, error=None, topic_exists=partitions is not None,
                                          partitions=len(partitions or ()))
                    if partitions and partitions != assigned:
                        await self._assign(consumer, partitions, TopicPartition)
                        assigned = set(partitions)
                if not assigned:
                    await self._sleep(0.5)
                    continue
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=5000)
                now = time.time()
                for tp, messages in batches.items():
                    for msg in messages:
                        self.store.add(from_record(msg), now)
                        self._positions[tp.partition] = msg.offset + 1
                self.store.set_status(last_poll_at=now, connected=True, error=None)
        finally:
            await consumer.stop()
            await admin.close()

    async def _partitions(self, admin) -> set[int] | None:
        """The topic's partitions, None when the broker has no such topic (asked without creating it)."""
        if self.topic not in await admin.list_topics():
            return None
        described = await admin.describe_topics([self.topic])
        found = {p["partition"] for t in described if t["topic"] == self.topic for p in t["partitions"]}
        return found or None

    async def _assign(self, consumer, partitions: set[int], TopicPartition) -> None:
        """Read ``partitions``, each from where this tail left it, a new one from its beginning."""
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        fresh = []
        for tp in tps:
            position = self._positions.get(tp.partition)
            if position is None:
                fresh.append(tp)
            else:
                consumer.seek(tp, position)
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        logger.info("DLQ reader: reading %s partitions %s", self.topic, sorted(partitions))
