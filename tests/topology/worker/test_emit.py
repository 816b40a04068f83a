"""topology.worker.emit.Emitter: a producer that is not started yet is waited for, never blamed on the messages."""

from __future__ import annotations

import asyncio
import types
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.exceptions import NotReady

from topology.settings import Settings
from topology.topics import ensure_topics
from topology.worker.emit import Emitter


class StartingApp:
    """A faust app as the raw reader can see it at start-up or shutdown: declaring a topic raises NotReady and
    there is no aiokafka producer, until ``ready`` gives it one."""

    def __init__(self):
        self.producer = types.SimpleNamespace(_producer=None)
        self.declares = 0

    def topic(self, name, partitions):
        app = self

        class Topic:
            async def maybe_declare(self):
                app.declares += 1
                if app.producer._producer is None:
                    raise NotReady("Producer service not yet started")
        return Topic()


def test_a_send_waits_for_the_producer_to_start_and_then_delivers(broker):
    topic = f"emit-{uuid.uuid4().hex[:8]}"

    async def run():
        await ensure_topics(Settings.from_env({"KAFKA_BROKER": broker.url, "TOPIC_PARTITIONS": "2"}), [topic])
        app, retries = StartingApp(), []
        emitter = Emitter(app, partitions=2, retry_base=0.01, retry_cap=0.05)
        sending = asyncio.ensure_future(emitter.send(topic, [(0, b"k", b"v0"), (1, b"k", b"v1")],
                                                     on_retry=retries.append))
        while len(retries) < 3 and not sending.done():
            await asyncio.sleep(0.01)
        assert not sending.done() and all(isinstance(exc, NotReady) for exc in retries)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            app.producer._producer = producer
            await asyncio.wait_for(sending, 30)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            got = []
            while len(got) < 2:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [m.value for records in batch.values() for m in records]
        finally:
            await consumer.stop()
        assert sorted(got) == [b"v0", b"v1"]

    asyncio.run(asyncio.wait_for(run(), 120))
