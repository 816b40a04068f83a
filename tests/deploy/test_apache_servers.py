"""Apache Kafka and Apache HBase (+ Thrift) from Maven jars: a clean stop is clean (no SIGKILL after the stop
timeout) and a restart keeps the data (kill -9 mid-run: tests/topology/test_apache_faults.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import happybase
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.apache_only


def _no_kill_after_timeout(caplog) -> None:
    assert not [r for r in caplog.records if "ignored SIGTERM" in r.getMessage()], caplog.text


def test_hbase_keeps_its_data_through_a_clean_stop(stack_servers, caplog):
    caplog.set_level(logging.INFO, logger="deploy.services")
    master, thrift = stack_servers.hbase_master(), stack_servers.hbase("apache")
    name = "t" + uuid.uuid4().hex[:10]
    conn = happybase.Connection(thrift.host, thrift.port)
    conn.create_table(name, {"d": {"max_versions": 3}})
    conn.table(name).put(b"row", {b"d:c": b"kept"})
    conn.close()
    assert thrift.stop() and master.stop()
    _no_kill_after_timeout(caplog)
    master.start()
    thrift.start()
    conn = happybase.Connection(thrift.host, thrift.port)
    try:
        assert conn.table(name).row(b"row") == {b"d:c": b"kept"}
    finally:
        conn.close()


def test_kafka_keeps_its_messages_through_a_clean_stop(stack_servers, caplog):
    caplog.set_level(logging.INFO, logger="deploy.services")
    kafka = stack_servers.broker("apache")
    topic = "t" + uuid.uuid4().hex[:10]

    async def produce():
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, str(i).encode())
        finally:
            await producer.stop()

    async def consume():
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            got = []
            while len(got) < 10:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 60)
                got += [m.value for msgs in batch.values() for m in msgs]
            return got
        finally:
            await consumer.stop()

    asyncio.run(produce())
    assert kafka.stop()
    _no_kill_after_timeout(caplog)
    kafka.start()
    assert sorted(asyncio.run(consume())) == sorted(str(i).encode() for i in range(10))  # 4 partitions
