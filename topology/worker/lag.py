"""Where the worker's consumers are in their partitions: lag per partition and messages read but not processed.

Lag is the high watermark (the broker's end offset, ListOffsets) minus the
group's committed offset, asked only where the broker's end offsets are
reliable (KAFKA_END_OFFSETS_RELIABLE; Tansu's are not).  Without it a stage
still knows what it read and has not committed (faust consumer) or is
handling right now (RawReader): that is what stall detection uses there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from topology.worker.health import lag_records, pending_records

logger = logging.getLogger(__name__)

END_OFFSETS_TIMEOUT = 5.0   # seconds: a broker that does not answer leaves the lag unknown, not the page hanging


@dataclass
class Positions:
    """One consumer's view: lag per (topic, partition) (None: unknown; absent: not asked), pending per topic."""

    lag: dict[tuple[str, int], int | None] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)   # assigned partitions per topic
    error: str | None = None

    def count(self, tps) -> None:
        """Count the assigned partitions per topic."""
        for tp in tps:
            self.partitions[tp.topic] = self.partitions.get(tp.topic, 0) + 1

    def set_lag(self, tps, highs: dict, committed: dict) -> None:
        """Each partition's lag from its high watermark and committed offset (None where either is unknown)."""
        for tp in tps:
            self.lag[(tp.topic, tp.partition)] = lag_records(highs.get(tp), committed.get(tp))


async def faust_positions(consumer, *, reliable: bool) -> Positions:
    """The faust consumer's assigned partitions: lag (when ``reliable``) and messages read and not yet committed.

    faust keeps, per partition, the offset of the last message it handed to
    the streams (``_read_offset``) and the committed one
    (``_committed_offset``, refreshed from the group at every assignment);
    it has no public accessor for either.
    """
    out = Positions()
    try:
        tps = sorted(consumer.assignment())
    except Exception as exc:   # ConsumerNotStarted: nothing assigned yet
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    read, committed = consumer._read_offset, consumer._committed_offset
    out.count(tps)
    for tp in tps:
        out.pending[tp.topic] = out.pending.get(tp.topic, 0) + pending_records(read.get(tp), committed.get(tp))
    if reliable and tps:
        try:
            highs = await asyncio.wait_for(consumer.highwaters(*tps), END_OFFSETS_TIMEOUT)
        except Exception as exc:
            out.error = f"end offsets: {type(exc).__name__}: {exc}"
            highs = {}
        out.set_lag(tps, highs, committed)
    return out


async def aiokafka_positions(consumer, committed: dict, *, reliable: bool) -> Positions:
    """An aiokafka group consumer's assigned partitions: lag (when ``reliable``), from ``committed`` (offsets
    this process committed, filled in from the group for a partition it has not committed yet)."""
    out = Positions()
    if consumer is None:
        out.error = "the consumer is not started"
        return out
    tps = sorted(consumer.assignment())
    out.count(tps)
    if not (reliable and tps):
        return out
    try:
        for tp in tps:
            if tp not in committed:
                committed[tp] = await asyncio.wait_for(consumer.committed(tp), END_OFFSETS_TIMEOUT)
        highs = await asyncio.wait_for(consumer.end_offsets(tps), END_OFFSETS_TIMEOUT)
    except Exception as exc:
        out.error = f"end offsets: {type(exc).__name__}: {exc}"
        highs = {}
    out.set_lag(tps, highs, committed)
    return out
