"""credit_core.dlq.reader on the real brokers: a topic is read from its beginning to its end exactly once, with
end offsets where they can be trusted (Apache Kafka) and without them on Tansu, whose end offsets are too low."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from credit_core.dlq.reader import read_topics
from credit_core.kafka_publish import send_batches

PARTITIONS = 3
PER_PARTITION = 40


async def _fill(bootstrap: str, topic: str, empty: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1), NewTopic(empty, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        # Several records per batch, several batches per partition: Tansu's end offset is then the last
        # batch's base offset + 1, below the true end.
        for start in range(0, PER_PARTITION, 10):
            await send_batches(producer, topic, [(p, b"k", b"%d-%d" % (p, n)) for p in range(PARTITIONS)
                                                 for n in range(start, start + 10)])
    finally:
        await producer.stop()


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


def test_a_topic_is_read_to_its_end_exactly_once(broker, stack):
    tag = uuid.uuid4().hex[:8]
    topic, empty, absent = f"dlq-read-{tag}", f"dlq-empty-{tag}", f"dlq-absent-{tag}"
    asyncio.run(_fill(broker.bootstrap, topic, empty))
    reliable = stack == "apache"
    ends = asyncio.run(_end_offsets(broker.bootstrap, topic))
    if reliable:
        assert ends == {p: PER_PARTITION for p in range(PARTITIONS)}
    else:   # what the reader must not trust: stopping at these would lose records
        assert all(ends[p] < PER_PARTITION for p in range(PARTITIONS)), ends
    read = asyncio.run(read_topics(broker.bootstrap, [topic, empty, absent], end_offsets_reliable=reliable,
                                   idle_polls=3, poll_ms=200))
    assert read.missing == {absent} and read.records[empty] == [] and read.records[absent] == []
    by_partition: dict[int, list[bytes]] = {}
    for rec in read.records[topic]:
        by_partition.setdefault(rec.partition, []).append(rec.value)
    assert by_partition == {p: [b"%d-%d" % (p, n) for n in range(PER_PARTITION)] for p in range(PARTITIONS)}
