"""What every agent shares: the batch iterator over a stream, and decoding the internal topics' item lists."""

from __future__ import annotations

import logging
import time
from typing import Any, AsyncIterator, Sequence

from topology.codec import loads

logger = logging.getLogger(__name__)


async def batches(stream, size: int, within: float, *, literal: bool = False) -> AsyncIterator[Sequence[Any]]:
    """Lists of events; each list is acked only when the caller asks for the next one (after its sends)."""
    if literal:
        # The literal port: one tuple at a time, as the Storm bolts did.
        async for event in stream.events():
            yield [event]
    else:
        async for events in stream.take_events(size, within=within):
            yield events


def message_source(event) -> tuple[bytes | None, bytes | None, dict[str, Any]]:
    m = event.message
    ts = m.timestamp
    return m.key, m.value, {"topic": m.topic, "partition": m.partition, "offset": m.offset,
                            "timestamp_ms": int(ts * 1000) if ts else None}


def decode_items(value: bytes | None) -> list[dict[str, Any]]:
    """The items of an internal-topic message (a JSON array of objects, or one object); ValueError when it is not."""
    if value is None:
        raise ValueError("empty message")
    data = loads(value)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(i, dict) and "id" in i for i in data):
        raise ValueError("not a JSON array of items with ids")
    return data


class StageStats:
    """Per-agent counters, logged every ``every`` seconds: applicants in, messages in, busy share of wall time."""

    def __init__(self, stage: str, every: float = 10.0):
        self.stage = stage
        self.every = every
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.started = now
        self.items = self.messages = self.batches = 0
        self.busy = 0.0

    def add(self, messages: int, items: int, busy: float) -> None:
        self.messages += messages
        self.items += items
        self.batches += 1
        self.busy += busy
        now = time.monotonic()
        if now - self.started >= self.every:
            wall = now - self.started
            logger.info("%s: %.0f applicants/s in %.0f messages/s, %d batches, busy %.0f%%", self.stage,
                        self.items / wall, self.messages / wall, self.batches, 100 * self.busy / wall)
            self._reset(now)
