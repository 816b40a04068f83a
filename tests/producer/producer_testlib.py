"""Helpers for the producer tests: applicants stored in MariaDB (tests.store), reading a topic back."""

from __future__ import annotations

import asyncio
import secrets
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.ids import topic_partitions
from tests import store

API_TOKEN = "producer-test-" + secrets.token_urlsafe(12)
SOURCE = "producer-test"   # the source column of the rows these tests store


def insert_applicants(url: str, ids: range) -> None:
    """The factory's applicants with ids ``ids``, stored straight into the table with source SOURCE."""
    store.insert_applicants(url, ids, source=SOURCE)


async def _consume(bootstrap: str, topic: str, expected: int, timeout: float, idle: float) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = await topic_partitions(bootstrap, topic)   # the topic may be brand new
            if not partitions:
                await asyncio.sleep(0.2)
        assert partitions, f"topic {topic} does not exist"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        messages, last_new = [], time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            got = [m for msgs in batch.values() for m in msgs]
            if got:
                messages.extend(got)
                last_new = time.monotonic()
            elif len(messages) >= expected and time.monotonic() - last_new >= idle:
                break
        return messages
    finally:
        await consumer.stop()


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60.0, idle: float = 1.0) -> list:
    """Every message of ``topic`` (all partitions from the start) once at least ``expected`` arrived and
    nothing new came for ``idle`` seconds (or ``timeout`` passed)."""
    return asyncio.run(_consume(bootstrap, topic, expected, timeout, idle))


def ids_of(messages) -> list[int]:
    return [orjson.loads(m.value)["applicant"]["id"] for m in messages]


