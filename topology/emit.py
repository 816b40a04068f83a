"""Produce many keyed messages with little per-message work: one aiokafka record batch per partition, then wait for delivery.

faust's ``topic.send`` wraps each message in futures and callbacks (tens of
microseconds each); here a message is one ``BatchBuilder.append`` (C code) and
a partition's messages go out as one produce request.  ``send`` returns only
once the broker acknowledged every message, so the caller can ack its input
after it: offsets advance only after the downstream send succeeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any, Iterable, Sequence

from aiokafka.errors import KafkaError

from topology.codec import dumps
from topology.records import id_key
from topology.retry import retry_forever

logger = logging.getLogger(__name__)


# Broker trouble is retried; anything else (a bug) propagates to the caller.
RETRYABLE = (KafkaError, OSError, asyncio.TimeoutError, RuntimeError)


MAX_MESSAGE_BYTES = 900 << 10   # under the brokers' default message.max.bytes (1 MiB) with room for the batch


def pack(items: Iterable[tuple[int, dict[str, Any]]], per_message: int, *, max_bytes: int = MAX_MESSAGE_BYTES
         ) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, dict[str, Any], str]]]:
    """(messages, rejects): (partition, item) pairs grouped into messages of at most ``per_message`` items.

    Each message is keyed by its first item's id.  A group that cannot be
    serialised or is over ``max_bytes`` is halved until the items at fault are
    alone; those come back as ``(partition, item, reason)`` rejects for the
    caller to dead-letter, so one bad item never holds up the others.
    """
    if per_message < 1:
        raise ValueError("per_message must be >= 1")
    by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for partition, item in items:
        by_partition[partition].append(item)
    out: list[tuple[int, bytes, bytes]] = []
    rejects: list[tuple[int, dict[str, Any], str]] = []
    for partition, group in by_partition.items():
        for i in range(0, len(group), per_message):
            _pack_chunk(partition, group[i:i + per_message], max_bytes, out, rejects)
    return out, rejects


def _pack_chunk(partition: int, chunk: list[dict[str, Any]], max_bytes: int, out: list, rejects: list) -> None:
    try:
        value = dumps(chunk)
        reason = None if len(value) <= max_bytes else f"{len(value)} bytes is more than the limit of {max_bytes}"
    except Exception as exc:  # orjson: nesting over 254, ints over 64 bits, ...
        reason = f"cannot be serialised: {type(exc).__name__}: {exc}"
    if reason is None:
        out.append((partition, id_key(chunk[0]["id"]), value))
    elif len(chunk) == 1:
        rejects.append((partition, chunk[0], reason))
    else:
        mid = len(chunk) // 2
        _pack_chunk(partition, chunk[:mid], max_bytes, out, rejects)
        _pack_chunk(partition, chunk[mid:], max_bytes, out, rejects)


class Emitter:
    """Sends (partition, key, value) messages through the faust app's own aiokafka producer."""

    def __init__(self, app, *, partitions: int, retry_base: float, retry_cap: float):
        self.app = app
        self.partitions = partitions
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._declared: set[str] = set()
        self._override = None

    def use_producer(self, producer) -> None:
        """Send through this started AIOKafkaProducer instead of the app's (faust test contexts); None undoes it."""
        self._override = producer

    def _producer(self):
        if self._override is not None:
            return self._override
        producer = getattr(self.app.producer, "_producer", None)
        if producer is None:
            raise RuntimeError("the faust producer is not started")
        return producer

    async def _declare(self, topic: str) -> None:
        if topic in self._declared or self._override is not None:
            return
        await self.app.topic(topic, partitions=self.partitions).maybe_declare()
        self._declared.add(topic)

    async def _send_once(self, topic: str, messages: Sequence[tuple[int, bytes | None, bytes]]) -> None:
        await self._declare(topic)
        producer = self._producer()
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = defaultdict(list)
        for partition, key, value in messages:
            if not 0 <= partition < self.partitions:
                raise ValueError(f"partition {partition} out of range for {topic}")
            by_partition[partition].append((key, value))
        futures = []
        for partition, msgs in by_partition.items():
            builder = producer.create_batch()
            for key, value in msgs:
                if builder.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = producer.create_batch()
                    if builder.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"a message of {len(value)} bytes does not fit a record batch")
            if builder.record_count():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
        if futures:
            await asyncio.gather(*futures)

    async def send(self, topic: str, messages: Sequence[tuple[int, bytes | None, bytes]]) -> None:
        """Send and wait until the broker has them all; a failure resends the lot (at-least-once) after a backoff."""
        if not messages:
            return
        await retry_forever(lambda: self._send_once(topic, messages), what=f"send {len(messages)} to {topic}",
                            retry_on=RETRYABLE, base=self.retry_base, cap=self.retry_cap, log=logger)

    async def send_all(self, batches: dict[str, Sequence[tuple[int, bytes | None, bytes]]]) -> None:
        """Send to several topics concurrently; returns when all are delivered."""
        await asyncio.gather(*(self.send(t, m) for t, m in batches.items() if m))
