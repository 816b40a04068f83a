"""The body every stage's faust agent shares: batches of events, each handled and delivered before its offsets
may be committed (``hold`` / ``release``), under ``handle_guarded``'s safety net, timed and watched (its task's
start and end go to the stage's StageWatch: health sees an actor that is gone)."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import contextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Sequence

from topology.stages.batching import StageStats, handle_guarded, message_source

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


async def run_stage(stream, instruments, handle: Callable[[list], Awaitable[int]],
                    send_dead: Callable[[list], Awaitable[None]], *, take: int, within: float, literal: bool,
                    partitions: int, max_original: int) -> None:
    """A faust agent's body: batches of events, each handled under ``handle_guarded``, with the stage's stats.

    ``instruments`` (topology.worker.monitor.Instruments) times each batch and
    hears when this task starts and ends, and why.
    """
    stage = instruments.stage
    stats = StageStats(stage)
    with watched(instruments.watch):
        async for events in batches(stream, take, within, literal=literal):
            started = time.monotonic()
            hold(events)
            handled = 0
            try:
                handled = await handle_guarded(stage, handle, [message_source(e) for e in events], send_dead,
                                               partitions=partitions, max_original=max_original)
            except BaseException:
                logger.warning("%s: a batch of %d message(s) was abandoned (%s); its offsets stay uncommitted "
                               "and the partition's next owner replays it", stage, len(events),
                               describe_sources(events))
                raise
            release(events)
            busy = time.monotonic() - started
            instruments.batch(busy)
            stats.add(len(events), handled, busy)


@contextmanager
def watched(watch, ended: str = "its stream ended") -> Iterator[None]:
    """Tell ``watch`` (a StageWatch) that the current task runs the stage, and when and why it stops
    (``ended`` when the block just ends)."""
    watch.task_started()
    why = ended
    try:
        yield
    except asyncio.CancelledError:
        why = "its task was cancelled"
        raise
    except BaseException as exc:
        why = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        watch.task_ended(why)


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
