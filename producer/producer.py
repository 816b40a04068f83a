"""Polls the applicant API and publishes each applicant to Kafka, at least once, behind a durable cursor.

Delivery: at-least-once. The checkpoint moves past a page only after the broker
acknowledged (acks=all) every message of that page, so a restart, even after
kill -9, skips nothing. A crash between the acknowledgement and the checkpoint
write, or a failed send retried as a whole page, publishes some applicants
twice; consumers make that harmless with idempotent writes keyed by the
application id (the message key).

Speed: the next page is fetched (in a thread) while the current one is being
published, up to two pages wait for their acknowledgements at once, and the
messages of a page go out as one record batch per partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from credit_core.kafka_publish import send_batches
from credit_core.messages.envelope import build_message
from credit_core.messages.keys import partition_for
from credit_core.retry import Backoff
from producer.api_client import ApiClient, ApiRejected, ApiUnavailable, Page
from producer.checkpoint import Checkpoint
from producer.metrics import ProducerMetrics
from producer.settings import ProducerSettings

logger = logging.getLogger(__name__)

MAX_PAGES_IN_FLIGHT = 2   # pages published but not yet acknowledged


async def publish(kafka: AIOKafkaProducer, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> int:
    """Publish (key, value) messages and wait until the broker acknowledged every one; return the count.

    Messages are packed into one record batch per partition (the partition the default
    partitioner picks for the key, as ``send()`` would), which costs about half of
    ``send()`` per message. Raises the first delivery error after all batches settled.
    """
    partitions = sorted(await kafka.partitions_for(topic))
    n = len(partitions)
    return await send_batches(kafka, topic,
                              ((partitions[partition_for(key, n)], key, value) for key, value in messages))


class Producer:
    """One producer loop. ``await run(once=...)`` returns a summary dict; ``stop()`` ends it after the current page."""

    def __init__(self, settings: ProducerSettings):
        if not isinstance(settings, ProducerSettings):
            raise TypeError(f"settings must be ProducerSettings, got {type(settings).__name__}")
        self.settings = settings
        self.checkpoint = Checkpoint(settings.checkpoint)
        self.api = ApiClient(settings)
        self._kafka: AIOKafkaProducer | None = None
        self._stop = asyncio.Event()
        self.published = 0
        self.pages = 0
        self.acked = 0            # the checkpointed cursor: every applicant up to this seq was acknowledged
        self._window = (time.monotonic(), 0)
        self.metrics = ProducerMetrics()

    def stop(self) -> None:
        self._stop.set()

    # -- waiting ------------------------------------------------------------------------
    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            return True
        except asyncio.TimeoutError:
            return False

    # -- Kafka --------------------------------------------------------------------------
    async def _start_kafka(self) -> bool:
        """Connect to the broker, waiting with backoff while it is down. False if stopped first."""
        backoff = Backoff(self.settings.backoff_start, self.settings.backoff_max)
        while not self._stop.is_set():
            kafka = AIOKafkaProducer(
                bootstrap_servers=self.settings.bootstrap,
                client_id="applicant-producer",
                acks="all",
                enable_idempotence=False,  # Tansu rejects InitProducerId; duplicates are handled downstream
                linger_ms=self.settings.linger_ms,
                max_batch_size=self.settings.max_batch_bytes,
                request_timeout_ms=self.settings.send_timeout_ms,
            )
            try:
                await kafka.start()
                self._kafka = kafka
                logger.info("connected to the broker at %s", self.settings.bootstrap)
                return True
            except (KafkaError, OSError) as exc:
                await _stop_quietly(kafka)
                delay = backoff.next_delay()
                logger.warning("broker %s unavailable (%s); retrying in %.1fs",
                               self.settings.bootstrap, exc, delay)
                if await self._sleep(delay):
                    return False
        return False

    async def _publish(self, page: Page) -> None:
        """Send every applicant of the page and wait until the broker acknowledged all of them."""
        fetched_at = page.fetched_at
        await publish(self._kafka, self.settings.topic, (build_message(a, fetched_at) for a in page.applicants))

    # -- API ----------------------------------------------------------------------------
    async def _fetch_until_ok(self, after: int) -> Page | None:
        """The page after ``after``, waiting with backoff while the API is down. None if stopped first."""
        backoff = Backoff(self.settings.backoff_start, self.settings.backoff_max)
        while not self._stop.is_set():
            try:
                page = await asyncio.to_thread(self.api.fetch, after, self.settings.batch)
                self.metrics.pages.inc()
                if backoff.attempt:
                    logger.info("applicant API is back at %s", self.settings.api_url)
                return page
            except ApiRejected as exc:
                self.metrics.api_error(exc.kind)
                raise
            except ApiUnavailable as exc:
                self.metrics.api_error(exc.kind)
                delay = backoff.next_delay()
                logger.warning("applicant API %s unavailable (%s); retrying in %.1fs",
                               self.settings.api_url, exc, delay)
                if await self._sleep(delay):
                    return None
        return None

    # -- the loop -----------------------------------------------------------------------
    async def run(self, once: bool = False) -> dict[str, Any]:
        """Publish until stopped (or, with ``once``, until the API has nothing more). Returns a summary.

        A broker failure ends the current pass: everything in flight settles, and after a backoff
        publishing restarts from the last checkpoint (re-reading those pages from the API).
        """
        started = time.monotonic()
        self.acked = start_after = self.checkpoint.load()
        self.metrics.checkpoint.set(start_after)
        logger.info("producer starting after seq %d: %s -> %s topic %s", start_after, self.settings.api_url,
                    self.settings.bootstrap, self.settings.topic)
        self._window = (started, 0)
        backoff = Backoff(self.settings.backoff_start, self.settings.backoff_max)
        try:
            while await self._start_kafka():
                progress_from = self.acked
                try:
                    await self._pump(once)
                    break
                except (KafkaError, ConnectionError) as exc:
                    if self.acked > progress_from:  # it worked for a while: a fresh failure, short wait
                        backoff.reset()
                    delay = backoff.next_delay()
                    logger.warning("broker did not acknowledge every message after seq %d (%s: %s); "
                                   "republishing from the checkpoint in %.1fs (duplicates possible: "
                                   "at-least-once)", self.acked, type(exc).__name__, exc, delay)
                    await _stop_quietly(self._kafka)
                    self._kafka = None
                    if await self._sleep(delay):
                        break
        finally:
            if self._kafka is not None:
                await _stop_quietly(self._kafka)
                self._kafka = None
            self.api.close()
        summary = self._summary(start_after, self.acked, started)
        logger.info("producer stopped: %s", summary)
        return summary

    async def _pump(self, once: bool) -> None:
        """One pass from the checkpoint: fetch page i+1 and publish page i+1 while page i's acks come in.

        The checkpoint advances page by page, in order, only past pages whose every message was acknowledged.
        """
        batch = self.settings.batch
        fetch: asyncio.Task | None = asyncio.create_task(self._fetch_until_ok(self.acked))
        inflight: deque[tuple[Page, asyncio.Task]] = deque()
        try:
            while True:
                page = await fetch
                fetch = None
                if page is None:  # stopped while waiting for the API
                    break
                full = page.count == batch
                if full:
                    fetch = asyncio.create_task(self._fetch_until_ok(page.next_after))
                if page.count:
                    inflight.append((page, asyncio.create_task(self._publish(page))))
                while inflight and (len(inflight) > MAX_PAGES_IN_FLIGHT or inflight[0][1].done() or not full):
                    done, task = inflight[0]
                    await task  # on failure the page stays at the head: nothing after it is checkpointed
                    inflight.popleft()
                    await asyncio.to_thread(self.checkpoint.save, done.next_after)
                    self._acknowledged(done)
                if self._stop.is_set() or (not full and once):
                    break
                if not full:
                    if await self._sleep(self.settings.interval):
                        break
                    fetch = asyncio.create_task(self._fetch_until_ok(self.acked))
        finally:
            if fetch is not None:
                fetch.cancel()
                await asyncio.gather(fetch, return_exceptions=True)
            if inflight:  # an error or a stop: let what was sent settle, keep the checkpoint in order
                results = await asyncio.gather(*(t for _, t in inflight), return_exceptions=True)
                for (done, _), result in zip(inflight, results):
                    if isinstance(result, BaseException):
                        break
                    self.checkpoint.save(done.next_after)
                    self._acknowledged(done)

    def _acknowledged(self, page: Page) -> None:
        self.acked = page.next_after
        self.published += page.count
        self.pages += 1
        self.metrics.published.inc(page.count)
        self.metrics.checkpoint.set(page.next_after)
        start, count = self._window
        count += page.count
        now = time.monotonic()
        if now - start >= self.settings.log_every:
            logger.info("published %d applicants in %.1fs (%.0f/s); total %d, cursor seq %d",
                        count, now - start, count / (now - start), self.published, self.acked)
            start, count = now, 0
        self._window = (start, count)

    def _summary(self, start_after: int, after: int, started: float) -> dict[str, Any]:
        seconds = time.monotonic() - started
        return {"published": self.published, "pages": self.pages, "started_after": start_after,
                "last_seq": after, "seconds": round(seconds, 3),
                "rate": round(self.published / seconds, 1) if seconds > 0 else None}


async def _stop_quietly(kafka: AIOKafkaProducer) -> None:
    try:
        await kafka.stop()
    except Exception as exc:  # closing a half-started client can fail in several ways; none matter
        logger.debug("closing the Kafka producer: %s", exc)


def run_producer(settings: ProducerSettings, *, once: bool = False) -> dict[str, Any]:
    """Run a producer to completion in a new event loop (for scripts and the main job)."""
    return asyncio.run(Producer(settings).run(once=once))


__all__ = ["ApiRejected", "Producer", "publish", "run_producer"]
