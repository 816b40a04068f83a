"""``RawReader``: applicants.raw read with aiokafka's own consumer group inside the faust worker."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from topology.stages.batching import Incoming, StageStats, handle_guarded, record_source
from topology.topics import bootstrap_of

logger = logging.getLogger(__name__)


class RawReader(Service):
    """Reads applicants.raw with aiokafka's consumer group inside the faust worker: getmany -> handle -> commit.

    faust's per-message consumer path (events, queues, sensors, acks) costs
    ~90 us of CPU per message on this machine against ~5 us for aiokafka's
    ``getmany``, and applicants.raw is the one topic with a message per
    applicant.  ``handle`` must only return once its output is delivered: the
    batch's offsets are committed right after it (at-least-once).  A batch
    whose handling raises is handled again message by message and what still
    fails is dead-lettered (``handle_guarded``): nothing replays forever.  The group is
    ``<TOPOLOGY_APP_ID>-raw``.  Subclasses set ``stage``, ``settings``, ``emitter`` and ``handle``
    (``app.service`` instantiates the class).
    """

    stage = "raw"
    settings = None   # topology.settings.Settings
    emitter = None    # topology.worker.emit.Emitter
    consumer: AIOKafkaConsumer | None = None

    async def handle(self, msgs: list[Incoming]) -> int:
        """Handle and deliver ``msgs``; return how many applicants were handled."""
        raise NotImplementedError

    async def send_dead(self, dead: list[tuple[int, bytes | None, bytes]]) -> None:
        """Deliver dead letters (the DLQ messages of messages that failed alone)."""
        await self.emitter.send(self.settings.topic_dlq, dead)

    def _new_consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            s.topic_raw, bootstrap_servers=bootstrap_of(s.broker), group_id=f"{s.app_id}-raw",
            client_id=f"{s.app_id}-raw", enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout * 1000),
            heartbeat_interval_ms=max(100, int(s.session_timeout * 1000 / 6)),
            max_partition_fetch_bytes=max(4 << 20, s.max_raw_bytes + (64 << 10)),
            fetch_max_bytes=16 << 20, max_poll_records=s.take_max, fetch_max_wait_ms=s.fetch_max_wait_ms)

    async def on_stop(self) -> None:
        await self._drop_consumer()

    async def _drop_consumer(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception as exc:  # already broken; nothing to keep
                logger.debug("%s: consumer stop failed: %s", self.stage, exc)

    @Service.task
    async def _consume(self) -> None:
        s = self.settings
        stats = StageStats(self.stage)
        while not self.should_stop:
            # A local reference: on_stop drops self.consumer while this loop may be inside an await.
            consumer = self.consumer
            try:
                if consumer is None:
                    consumer = self.consumer = self._new_consumer()
                    await consumer.start()
                    logger.info("%s: reading %s as consumer group %s-raw", self.stage, s.topic_raw, s.app_id)
                if self.should_stop or consumer is not self.consumer:
                    break
                batch = await consumer.getmany(timeout_ms=int(s.take_within * 1000), max_records=s.take_max)
            except KafkaError as exc:
                logger.warning("%s: consumer error %s; reconnecting in 1s", self.stage, exc)
                await self._drop_consumer()
                await asyncio.sleep(1.0)
                continue
            if not batch:
                continue
            started = time.monotonic()
            msgs = [record_source(m) for records in batch.values() for m in records]
            handled = await handle_guarded(self.stage, self.handle, msgs, self.send_dead, partitions=s.partitions,
                                           max_original=s.dlq_original_max)
            # Delivered: now the offsets may advance, exactly past the messages just handled.
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, KafkaError) as exc:
                # A rebalance took the partitions away: their new owner replays them (at-least-once).
                logger.warning("%s: commit failed (%s); those applicants will be replayed", self.stage, exc)
            stats.add(len(msgs), handled, time.monotonic() - started)
