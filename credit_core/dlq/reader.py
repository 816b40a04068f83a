"""Read topics from their beginning to their current end with aiokafka, also where end offsets are wrong (Tansu).

Where the broker's end offsets can be trusted (KAFKA_END_OFFSETS_RELIABLE,
Apache Kafka) a read stops once every partition's position has reached the
end offset asked for at the start.  Tansu's ListOffsets answer is wrong
(the high watermark reads as the last batch's base offset + 1, DESIGN.md):
too low, never too high, so there it is only a floor, and the read goes on
until ``idle_polls`` fetches in a row, each waiting ``poll_ms``, bring
nothing.  Records written while the read runs may or may not be included.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

logger = logging.getLogger(__name__)

DEFAULT_FETCH_BYTES = 8 << 20        # per partition and fetch: a dead letter holds up to DLQ_ORIGINAL_MAX
DEFAULT_REQUEST_TIMEOUT_MS = 15_000
STALL_POLLS = 50                     # reliable offsets: fetches in a row without progress before giving up


class ReadError(RuntimeError):
    """A topic could not be read to its end."""


@dataclass
class TopicRead:
    """What a read found: each topic's records (in offset order per partition), and the topics that do not exist."""

    records: dict[str, list[Any]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)


async def topic_partitions(bootstrap: str, topics: Iterable[str], *,
                           request_timeout_ms: int = DEFAULT_REQUEST_TIMEOUT_MS) -> dict[str, list[int]]:
    """Each existing topic's partitions, from an admin client (never creates a topic); absent ones are left out."""
    topics = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    out: dict[str, list[int]] = {}
    for t in described:
        if t.get("topic") in wanted:
            parts = sorted(p["partition"] for p in t.get("partitions", []))
            if parts:
                out[t["topic"]] = parts
    return out


async def read_topics(bootstrap: str, topics: Iterable[str], *, end_offsets_reliable: bool, idle_polls: int = 3,
                      poll_ms: int = 300, fetch_bytes: int = DEFAULT_FETCH_BYTES,
                      request_timeout_ms: int = DEFAULT_REQUEST_TIMEOUT_MS) -> TopicRead:
    """Every record of ``topics`` from the beginning to the current end (see the module docstring)."""
    topics = list(dict.fromkeys(topics))
    out = TopicRead(records={t: [] for t in topics})
    partitions = await topic_partitions(bootstrap, topics, request_timeout_ms=request_timeout_ms)
    out.missing = {t for t in topics if t not in partitions}
    tps = [TopicPartition(t, p) for t, parts in partitions.items() for p in parts]
    if not tps:
        return out
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=min(poll_ms, 100), max_partition_fetch_bytes=fetch_bytes,
                                fetch_max_bytes=max(fetch_bytes, 16 << 20), request_timeout_ms=request_timeout_ms)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        try:
            ends = await consumer.end_offsets(tps)
        except KafkaError as exc:
            if end_offsets_reliable:
                raise
            logger.debug("end offsets unavailable (%s): reading until the topics stay empty", exc)
            ends = {}
        await _drain(consumer, tps, ends, out, reliable=end_offsets_reliable, idle_polls=idle_polls,
                     poll_ms=poll_ms)
    finally:
        await consumer.stop()
    return out


async def _behind(consumer: AIOKafkaConsumer, tps: list[TopicPartition], ends: dict) -> list[TopicPartition]:
    behind = []
    for tp in tps:
        end = ends.get(tp)
        if end is not None and await consumer.position(tp) < end:
            behind.append(tp)
    return behind


async def _drain(consumer: AIOKafkaConsumer, tps: list[TopicPartition], ends: dict, out: TopicRead, *,
                 reliable: bool, idle_polls: int, poll_ms: int) -> None:
    idle = 0
    while True:
        behind = await _behind(consumer, tps, ends)
        if reliable and not behind:
            return
        batch = await consumer.getmany(timeout_ms=poll_ms, max_records=10_000)
        for tp, records in batch.items():
            out.records[tp.topic].extend(records)
        if batch:
            idle = 0
            continue
        idle += 1
        if not reliable and not behind and idle >= idle_polls:
            return
        if idle >= max(STALL_POLLS, idle_polls):
            where = ", ".join(f"{tp.topic}/{tp.partition} at {await consumer.position(tp)} of {ends.get(tp)}"
                              for tp in behind)
            raise ReadError(f"no progress in {idle} fetches of {poll_ms} ms: {where}")
        await asyncio.sleep(0)
