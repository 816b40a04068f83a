"""What every agent shares: the batch iterator over a stream, and decoding the internal topics' item lists."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from topology.codec import loads
from topology.records import dead_letter, item_bytes
from topology.topics import bootstrap_of

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


def record_source(m) -> tuple[bytes | None, bytes | None, dict[str, Any]]:
    """(key, value, source) of an aiokafka ConsumerRecord; headers are not read (nothing depends on them)."""
    return m.key, m.value, {"topic": m.topic, "partition": m.partition, "offset": m.offset,
                            "timestamp_ms": m.timestamp}


def decode_items(value: bytes | None) -> list[Any]:
    """The elements of an internal-topic message (a JSON array, or one object); ValueError when it is neither."""
    if value is None:
        raise ValueError("empty message")
    data = loads(value)
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise ValueError(f"not a JSON array of items but a JSON {type(data).__name__}")
    return data


def collect_items(messages, partitions: int, max_original: int, stage: str, check: Callable[[Any], str | None]):
    """(partition, item) pairs from internal-topic messages, and dlq messages for what ``check`` refuses.

    ``messages`` are (key, value, source) tuples.  A message that is not JSON
    gets one dead letter; in a message that is, each item that breaks the
    topic's contract gets its own and the others carry on.
    """
    items: list[tuple[int, dict]] = []
    dead: list[tuple[int, bytes | None, bytes]] = []
    for key, value, src in messages:
        partition = src["partition"] % partitions
        try:
            decoded = decode_items(value)
        except Exception as exc:
            dead.append(dead_letter(stage=stage, reason="bad internal message",
                                    errors=[{"field": "$", "reason": str(exc)}], original=value, key=key, src=src,
                                    app_id=None, partitions=partitions, max_original=max_original))
            continue
        for item in decoded:
            why = check(item)
            if why is None:
                items.append((partition, item))
            else:
                dead.append(dead_letter(stage=stage, reason="bad internal item", errors=[{"field": "$", "reason": why}],
                                        original=item_bytes(item), key=key, src=src, app_id=None,
                                        partitions=partitions, max_original=max_original))
    return items, dead


async def handle_guarded(stage: str, handle: Callable[[list], Awaitable[int]], msgs: list,
                         send_dead: Callable[[list], Awaitable[None]], *, partitions: int, max_original: int) -> int:
    """``await handle(msgs)``; if it raises, each message alone, and a dead letter for any that still fails.

    The stages catch every failure they know of per message; this is the net
    under them, so that no input (nor a bug it triggers) can make a batch
    replay forever or hold up the messages behind it.  ``msgs`` are (key,
    value, source) tuples; ``handle`` returns how many applicants it handled,
    and so does this.
    """
    try:
        return await handle(msgs)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s: a batch of %d messages failed; handling them one by one", stage, len(msgs))
    handled = 0
    for msg in msgs:
        try:
            handled += await handle([msg])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            key, value, src = msg
            logger.error("%s: message at %s failed alone (%s: %s); dead-lettered", stage, src,
                         type(exc).__name__, exc)
            await send_dead([dead_letter(stage=stage, reason="internal error",
                                         errors=[{"field": "$", "reason": f"{type(exc).__name__}: {exc}"}],
                                         original=value, key=key, src=src, app_id=None, partitions=partitions,
                                         max_original=max_original)])
    return handled


async def run_stage(stream, stage: str, handle: Callable[[list], Awaitable[int]],
                    send_dead: Callable[[list], Awaitable[None]], *, take: int, within: float, literal: bool,
                    partitions: int, max_original: int) -> None:
    """A faust agent's body: batches of events, each handled under ``handle_guarded``, with the stage's stats."""
    stats = StageStats(stage)
    async for events in batches(stream, take, within, literal=literal):
        started = time.monotonic()
        hold(events)
        handled = 0
        try:
            handled = await handle_guarded(stage, handle, [message_source(e) for e in events], send_dead,
                                           partitions=partitions, max_original=max_original)
        except BaseException:
            logger.warning("%s: a batch of %d message(s) was abandoned (%s); its offsets stay uncommitted and "
                           "the partition's next owner replays it", stage, len(events), describe_sources(events))
            raise
        release(events)
        stats.add(len(events), handled, time.monotonic() - started)


def hold(events) -> None:
    """Take one more reference on each event's message, so faust cannot commit its offset before ``release``.

    faust acks a batch of ``take_events`` in a ``finally``: also when the agent is cancelled or raises in the
    middle of the batch (a stop, a rebalance, a crash), and its offsets were then committed although the
    batch was never delivered downstream. Held this way, that ack only drops the extra reference."""
    for event in events:
        event.message.incref()


def release(events) -> None:
    """Drop the reference ``hold`` took, once the batch is delivered; faust's own ack then commits it."""
    for event in events:
        event.message.decref()


def describe_sources(events) -> str:
    """'topic[partition]@first-last, ...' for a log line."""
    spans: dict[tuple[str, int], list[int]] = {}
    for event in events:
        m = event.message
        spans.setdefault((m.topic, m.partition), []).append(m.offset)
    return ", ".join(f"{t}[{p}]@{min(o)}-{max(o)}" for (t, p), o in sorted(spans.items()))


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


class RawReader(Service):
    """Reads applicants.raw with aiokafka's consumer group inside the faust worker: getmany -> handle -> commit.

    faust's per-message consumer path (events, queues, sensors, acks) costs
    ~90 us of CPU per message on this machine against ~5 us for aiokafka's
    ``getmany``, and applicants.raw is the one topic with a message per
    applicant.  ``handle`` must only return once its output is delivered: the
    batch's offsets are committed right after it (at-least-once).  A batch
    whose handling raises is handled again message by message and what still
    fails is dead-lettered (``handle_guarded``): nothing replays forever.  The group is
    ``<TOPOLOGY_APP_ID>-raw``.
    """

    stage = "raw"
    settings = None   # topology.settings.Settings, set by subclasses
    emitter = None    # topology.emit.Emitter, set by subclasses
    consumer: AIOKafkaConsumer | None = None

    async def handle(self, msgs: list[tuple[bytes | None, bytes | None, dict[str, Any]]]) -> int:
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
