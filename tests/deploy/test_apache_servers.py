"""Apache Kafka and Apache HBase (+ Thrift) from Maven jars: they start, answer real requests and keep data
through kill -9 and restart."""

from __future__ import annotations

import asyncio

import happybase
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.apache_servers import HBaseMaster, HBaseThrift, KafkaServer
from deploy.services import free_port


def test_hbase_keeps_versions_and_data_through_kill_9(tmp_path):
    master = HBaseMaster(run_dir=tmp_path, port=free_port())
    thrift = HBaseThrift(master=master, port=free_port())
    try:
        master.start()
        thrift.start()
        conn = happybase.Connection(thrift.host, thrift.port)
        conn.create_table("t", {"d": {"max_versions": 3}})
        table = conn.table("t")
        for value in (b"1", b"2", b"3", b"4"):
            table.put(b"row", {b"d:c": value})
        assert table.cells(b"row", b"d:c") == [b"4", b"3", b"2"]
        conn.close()
        thrift.kill()
        master.kill()
        master.start()
        thrift.start()
        conn = happybase.Connection(thrift.host, thrift.port)
        assert conn.table("t").row(b"row") == {b"d:c": b"4"}
        conn.close()
    finally:
        thrift.stop()
        master.stop()


def test_kafka_keeps_messages_through_kill_9(tmp_path):
    kafka = KafkaServer(run_dir=tmp_path, port=free_port())

    async def produce():
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait("t", str(i).encode())
        finally:
            await producer.stop()

    async def consume():
        consumer = AIOKafkaConsumer("t", bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            got = []
            while len(got) < 10:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 60)
                got += [m.value for msgs in batch.values() for m in msgs]
            return got
        finally:
            await consumer.stop()

    try:
        kafka.start()
        asyncio.run(produce())
        kafka.kill()
        kafka.start()
        assert sorted(asyncio.run(consume())) == sorted(str(i).encode() for i in range(10))  # 4 partitions
    finally:
        kafka.stop()
