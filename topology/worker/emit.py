"""Send a stage's (partition, key, value) messages through the faust app's own aiokafka producer.

``send`` returns only once the broker acknowledged every message
(``credit_core.kafka_publish.send_batches``: one record batch per
partition), so the caller can ack its input after it: offsets advance only
after the downstream send succeeded.  A failure resends the lot after a
backoff (at-least-once), forever: the stream waits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Sequence

from aiokafka.errors import KafkaError
from faust.exceptions import NotReady

from credit_core.kafka_publish import send_batches
from credit_core.retry import retry_forever

logger = logging.getLogger(__name__)

# Broker trouble is retried, and so is a faust producer not started yet or already stopped (NotReady from a topic
# declaration): the raw reader can hold a batch at that moment, and its applicants are not at fault. Anything
# else (a bug) propagates to the caller.
RETRYABLE = (KafkaError, OSError, asyncio.TimeoutError, RuntimeError, NotReady)

Message = tuple[int, bytes | None, bytes]


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
        # faust has no public accessor for the aiokafka producer under its Producer service; this is the one
        # place that reaches for it (record batches need aiokafka's create_batch / send_batch).
        producer = getattr(self.app.producer, "_producer", None)
        if producer is None:
            raise RuntimeError("the faust producer is not started")
        return producer

    async def _declare(self, topic: str) -> None:
        if topic in self._declared or self._override is not None:
            return
        await self.app.topic(topic, partitions=self.partitions).maybe_declare()
        self._declared.add(topic)

    async def _send_once(self, topic: str, messages: Sequence[Message]) -> None:
        await self._declare(topic)
        await send_batches(self._producer(), topic, messages, partitions=self.partitions)

    async def send(self, topic: str, messages: Sequence[Message], *,
                   on_retry: Callable[[BaseException], None] | None = None) -> None:
        """Send and wait until the broker has them all; a failure resends the lot (at-least-once) after a backoff,
        and is passed to ``on_retry`` (the sending stage's credit_retries_total{cause="broker"})."""
        if not messages:
            return
        await retry_forever(lambda: self._send_once(topic, messages), what=f"send {len(messages)} to {topic}",
                            retry_on=RETRYABLE, base=self.retry_base, cap=self.retry_cap, log=logger,
                            on_retry=on_retry)

    async def send_all(self, batches: dict[str, Sequence[Message]], *,
                       on_retry: Callable[[BaseException], None] | None = None) -> None:
        """Send to several topics concurrently; returns when all are delivered."""
        await asyncio.gather(*(self.send(t, m, on_retry=on_retry) for t, m in batches.items() if m))
