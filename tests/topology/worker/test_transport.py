"""topology.worker.transport: which partitions a rebalance reads from their start."""

from __future__ import annotations

from topology.worker.transport import never_committed


def test_partitions_without_a_committed_offset_are_the_ones_read_from_their_start():
    assert never_committed({"a": None, "b": 0, "c": 17, "d": -1}) == ["a", "d"]
