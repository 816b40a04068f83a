"""credit_core.kafka_publish: one record batch per partition, full batches shipped, every future awaited."""

from __future__ import annotations

import asyncio

import pytest

from credit_core.kafka_publish import send_batches


class FakeBatch:
    def __init__(self, capacity):
        self.capacity = capacity
        self.records = []

    def append(self, *, key, value, timestamp):
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def record_count(self):
        return len(self.records)


class FakeProducer:
    def __init__(self, capacity=3, fail_partition=None):
        self.capacity = capacity
        self.fail_partition = fail_partition
        self.sent = []

    def create_batch(self):
        return FakeBatch(self.capacity)

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((topic, partition, list(batch.records)))
        fut = asyncio.get_running_loop().create_future()
        if partition == self.fail_partition:
            fut.set_exception(OSError("broker down"))
        else:
            fut.set_result(None)
        return fut


def test_messages_go_out_in_batches_per_partition():
    p = FakeProducer(capacity=3)
    msgs = [(i % 2, str(i).encode(), b"v%d" % i) for i in range(10)]
    assert asyncio.run(send_batches(p, "t", msgs, partitions=2)) == 10
    by_partition = {}
    for topic, partition, records in p.sent:
        assert topic == "t" and 0 < len(records) <= 3
        by_partition.setdefault(partition, []).extend(k for k, _ in records)
    assert by_partition == {0: [b"0", b"2", b"4", b"6", b"8"], 1: [b"1", b"3", b"5", b"7", b"9"]}


def test_a_delivery_error_is_raised_after_every_batch_was_sent_and_bad_partitions_are_refused():
    p = FakeProducer(fail_partition=1)
    with pytest.raises(OSError):
        asyncio.run(send_batches(p, "t", [(0, b"a", b"1"), (1, b"b", b"2"), (2, b"c", b"3")]))
    assert sorted(partition for _, partition, _ in p.sent) == [0, 1, 2]
    with pytest.raises(ValueError, match="out of range"):
        asyncio.run(send_batches(FakeProducer(), "t", [(4, b"a", b"1")], partitions=4))


def test_a_message_larger_than_a_batch_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        asyncio.run(send_batches(FakeProducer(capacity=0), "t", [(0, b"a", b"1")]))
