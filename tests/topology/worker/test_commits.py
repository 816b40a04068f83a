"""topology.worker.commits: a commit never passes an offset that was not acked (faust's own rule did)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from deploy.services import wait_for
from topology.worker.commits import contiguous_commit, head_offset


def test_a_gap_at_the_head_holds_the_commit():
    # faust committed 32 here with 30 committed and 30 still in flight
    assert contiguous_commit([31], [], 30) == (None, [])
    assert contiguous_commit([1, 2], [], 0) == (None, [])          # nothing committed yet, offset 0 in flight


def test_the_run_from_the_committed_offset_is_committed():
    assert contiguous_commit([30, 31, 33], [], 30) == (32, [30, 31])
    assert contiguous_commit([5, 6, 7], [], 5) == (8, [5, 6, 7])


def test_offsets_the_broker_never_delivered_do_not_hold_it():
    assert contiguous_commit([10, 13], [range(11, 13)], 10) == (14, [10, 11, 12, 13])


def test_nothing_is_committed_without_a_start():
    assert contiguous_commit([0, 1], [], None) == (None, [])


@given(st.integers(0, 50), st.sets(st.integers(0, 120), max_size=60))
def test_every_offset_below_the_commit_was_acked(start, acked):
    acked = [o for o in acked if o >= start]
    offset, run = contiguous_commit(acked, [], start)
    if offset is None:
        assert start not in acked
    else:
        assert set(range(start, offset)) <= set(acked) and offset not in acked
        assert run == list(range(start, offset))


def test_the_head_before_a_first_commit_is_the_lowest_offset_held():
    assert head_offset([7, 5], [4]) == 4          # 4 handed to a stream, not acked: the commit waits for it
    assert head_offset([5, 6], []) == 5
    assert head_offset([], []) is None
    assert contiguous_commit([5, 6], [], head_offset([5, 6], [4])) == (None, [])
    assert contiguous_commit([4, 5, 6], [], head_offset([4, 5, 6], [8])) == (7, [4, 5, 6])


def test_a_finished_run_has_committed_every_internal_partition(topology, workload):
    """A group that never committed commits (a restart then replays nothing already delivered).

    On Tansu an end offset is the last batch's base offset + 1 (DESIGN.md), at most the true end, so
    ``committed >= end`` holds on both brokers when everything read was committed, and only then."""
    msgs, ids, _ = workload(3000)
    topology.produce(msgs)
    topology.worker()
    topology.wait_accounted(ids)
    s = topology.settings
    tps = [TopicPartition(t, p) for t in (s.topic_clean, s.topic_eligible, s.topic_scored)
           for p in range(s.partitions)]

    async def behind() -> dict:
        consumer = AIOKafkaConsumer(bootstrap_servers=topology.bootstrap, group_id=s.app_id,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(tps)
            committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
        finally:
            await consumer.stop()
        return {f"{tp.topic}[{tp.partition}]": (committed[tp], ends[tp]) for tp in tps if committed[tp] < ends[tp]}

    lagging: dict = {}

    def all_committed() -> bool:
        lagging.clear()
        lagging.update(asyncio.run(behind()))
        return not lagging

    try:
        wait_for(all_committed, 30, interval=1.0, what="commits over every internal partition")
    except TimeoutError:
        raise AssertionError(f"(committed, end) of partitions not committed to their end: {lagging}") from None
