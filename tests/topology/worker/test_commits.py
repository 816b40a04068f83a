"""topology.worker.commits: a commit never passes an offset that was not acked (faust's own rule did)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from topology.worker.commits import contiguous_commit


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
