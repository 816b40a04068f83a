"""Publish many messages with little per-message work: one aiokafka record batch per partition, then wait.

``send()`` wraps each message in futures and callbacks (tens of
microseconds each); here a message is one ``BatchBuilder.append`` (C code)
and a partition's messages go out as few produce requests.  Used by the
producer (partitions from the key, as the default partitioner picks them)
and the topology's Emitter (partitions chosen by the stage).
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable


async def send_batches(producer: Any, topic: str, messages: Iterable[tuple[int, bytes | None, bytes]], *,
                       partitions: int | None = None) -> int:
    """Send (partition, key, value) messages through a started AIOKafkaProducer; return the count once the
    broker acknowledged every one.

    A full batch is shipped and a new one started.  After every batch settled,
    the first delivery error is raised (the caller resends the lot:
    at-least-once).  ``partitions``, when given, is the topic's partition
    count: a partition outside it is a ValueError.
    """
    batches: dict[int, Any] = {}
    futures = []
    count = 0
    for partition, key, value in messages:
        batch = batches.get(partition)
        if batch is None:
            if partitions is not None and not 0 <= partition < partitions:
                raise ValueError(f"partition {partition} out of range for {topic}")
            batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it, start another
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a message of {len(value)} bytes (key {key!r:.40}) does not fit a record batch")
        count += 1
    for partition, batch in batches.items():
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    if futures:
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
    return count
