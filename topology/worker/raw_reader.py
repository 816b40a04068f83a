"""``RawReader``: applicants.raw read with aiokafka's own consumer group inside the faust worker."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from topology.stages.batching import Incoming, StageStats, handle_guarded, record_source
from topology.worker.running import watched
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
    ``<TOPOLOGY_APP_ID>-raw``.  Subclasses set ``stage``, ``settings``, ``emitter``, ``instruments``,
    ``health`` and ``handle`` (``app.service`` instantiates the class).

    For health (``topology.worker.monitor``) it tells its task's start and
    end to its StageWatch, whether its group has assigned it partitions
    (``assigned``), what it committed (``committed``) and how many messages
    it is handling now (``in_flight``).
    """

    stage = "raw"
    settings = None      # topology.settings.Settings
    emitter = None       # topology.worker.emit.Emitter
    instruments = None   # topology.worker.monitor.Instruments of the stage
    health = None        # topology.worker.monitor.WorkerHealth
    consumer: AIOKafkaConsumer | None = None
    assigned = False     # the group has assigned partitions (maybe none) at least once
    in_flight = 0        # messages of the batch being handled
    committed: dict

    def __post_init__(self) -> None:
        self.committed = {}   # TopicPartition -> offset this process committed (or read from the group)

    async def handle(self, msgs: list[Incoming]) -> int:
        """Handle and deliver ``msgs``; return how many applicants were handled."""
        raise NotImplementedError

    async def send_dead(self, dead: list[tuple[int, bytes | None, bytes]]) -> None:
        """Deliver dead letters (the DLQ messages of messages that failed alone)."""
        await self.emitter.send(self.settings.topic_dlq, dead, on_retry=self.instruments.broker_retry)
        self.instruments.delivered(None, dead)

    def _new_consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_of(s.broker), group_id=f"{s.app_id}-raw",
            client_id=f"{s.app_id}-raw", enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout * 1000),
            heartbeat_interval_ms=max(100, int(s.session_timeout * 1000 / 6)),
            max_partition_fetch_bytes=max(4 << 20, s.max_raw_bytes + (64 << 10)),
            fetch_max_bytes=16 << 20, max_poll_records=s.take_max, fetch_max_wait_ms=s.fetch_max_wait_ms)
        consumer.subscribe([s.topic_raw], listener=_Assignments(self))
        return consumer

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
        if self.health is not None:
            self.health.raw_reader = self
        with watched(self.instruments.watch, ended="the reader stopped"):
            await self._consume_loop()

    async def _consume_loop(self) -> None:
        s = self.settings
        stats = StageStats(self.stage)
        instruments = self.instruments
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
            self.in_flight = len(msgs)
            handled = await handle_guarded(self.stage, self.handle, msgs, self.send_dead, partitions=s.partitions,
                                           max_original=s.dlq_original_max)
            # Delivered: now the offsets may advance, exactly past the messages just handled.
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
            try:
                await consumer.commit(offsets)
                self.committed.update(offsets)
            except (CommitFailedError, KafkaError) as exc:
                # A rebalance took the partitions away: their new owner replays them (at-least-once).
                logger.warning("%s: commit failed (%s); those applicants will be replayed", self.stage, exc)
            self.in_flight = 0
            busy = time.monotonic() - started
            instruments.batch(busy)
            stats.add(len(msgs), handled, busy)


class _Assignments(ConsumerRebalanceListener):
    """Tells the RawReader when its group assigned it partitions, and forgets what it knew of revoked ones."""

    def __init__(self, reader: RawReader):
        self.reader = reader

    async def on_partitions_revoked(self, revoked) -> None:
        for tp in revoked:
            self.reader.committed.pop(tp, None)

    async def on_partitions_assigned(self, assigned) -> None:
        for tp in assigned:
            self.reader.committed.pop(tp, None)   # another member may have committed since
        self.reader.assigned = True
