"""The worker's faust consumer: contiguous commits (``topology.worker.commits``), our fetch wait, and a
never-committed partition read from its start after every rebalance.

faust passes ``fetch_max_wait_ms=1500`` to aiokafka with no setting for it;
Tansu answers a fetch only when the wait expires, so ours (FETCH_MAX_WAIT_MS,
~20 ms) is set on the consumer faust creates, before its fetcher starts.

After a rebalance faust drops the messages its streams still buffer from the
previous generation and seeks each partition to its committed offset, from
where they are read again. A partition nobody has committed yet is not sought
at all (aiokafka seeks only to offsets that exist), so its fetch position
stayed past the dropped messages and they were never read again: the head of
a partition was lost when a second worker joined while the first one's
buffers were full (1,000 of 30,000 applicants, two messages of 500, in each of
two apache benchmark runs, at the old commit as at this one). Such a partition
is now sought to its beginning (at-least-once: what was already delivered is
delivered again). Installed through the transport
(``TopologyApp._new_transport``), not by replacing faust's methods.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Mapping

from aiokafka.errors import IllegalStateError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from topology.worker.commits import ContiguousCommitConsumer

logger = logging.getLogger(__name__)


def never_committed(committed: Mapping) -> list:
    """The partitions of aiokafka's ``seek_to_committed`` answer that have no committed offset."""
    return [tp for tp, offset in committed.items() if offset is None or offset < 0]


class TopologyConsumerThread(AIOKafkaConsumerThread):
    """faust's aiokafka consumer thread with the app's ``settings.fetch_max_wait_ms``, seeking partitions
    nobody has committed to their beginning whenever it seeks to the committed offsets (each rebalance), on an
    asyncio event loop of its own whatever FAUST_LOOP says.

    uvloop stays the main loop's. Stopping this thread (faust and mode) schedules work on its loop from the
    main thread while the thread closes that loop; with uvloop that crashed the worker with SIGSEGV inside the
    thread's ``run_until_complete`` (about one SIGTERM in a hundred during a group join, caught with
    PYTHONFAULTHANDLER), where asyncio's loop answers with an exception, or runs the callback.
    """

    def __init__(self, consumer, **kwargs):
        super().__init__(consumer, thread_loop=asyncio.SelectorEventLoop(), **kwargs)
        self._close_thread_loop_on_stop = True   # mode closes only the loops it made; this one is ours

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # aiokafka takes it only in its constructor, which faust calls with its own value.
        consumer._fetch_max_wait_ms = self.app.settings.fetch_max_wait_ms
        return consumer

    async def seek_to_committed(self):
        committed = await super().seek_to_committed()
        fresh = never_committed(committed)
        if fresh:
            try:
                await self.seek_to_beginning(*fresh)
            except IllegalStateError as exc:
                # Revoked again in between: not ours now; the next assignment seeks afresh.
                logger.info("seek to the beginning of %s skipped: %s", fresh, exc)
        return committed


class TopologyConsumer(ContiguousCommitConsumer):
    """The consumer of ``TopologyApp``'s transport."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return TopologyConsumerThread(self, loop=self.loop, beacon=self.beacon)
