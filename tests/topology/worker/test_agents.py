"""topology.worker.agents: each agent in isolation in faust's test context, sending to the real broker."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from credit_core.jsoncodec import dumps
from topology.worker.agents import decision_agent, filter_agent
from topology.worker.app import app
from tests.factories import raw_applicant
from tests.topology.messages import envelope
from topology.topics import ensure_topics


settings = app.settings
emitter = app.emitter


async def _read(bootstrap, topic):
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    out = []
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        while batch := await c.getmany(timeout_ms=500):
            for msgs in batch.values():
                out.extend(orjson.loads(m.value) for m in msgs)
    finally:
        await c.stop()
    return out


@pytest.fixture
def real_producer(broker):
    """The app's emitter sends through a producer on the test broker while the agent runs in its test context."""
    async def start():
        await ensure_topics(dataclasses.replace(settings, broker=broker.url))
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await p.start()
        emitter.use_producer(p)
        return p
    return start


def test_filter_agent_sends_clean_and_dead_letters(broker, real_producer):
    app_id = random.randrange(10**9, 2 * 10**9)

    async def run():
        p = await real_producer()
        try:
            async with filter_agent.test_context() as agent:
                await agent.put(envelope(raw_applicant(app_id), 1), key=str(app_id).encode())
                await agent.put(b"\xff junk", key=str(app_id + 1).encode())
                await asyncio.sleep(0.5)   # the take() window
        finally:
            emitter.use_producer(None)
            await p.stop()
        return (await _read(broker.bootstrap, settings.topic_clean), await _read(broker.bootstrap, settings.topic_dlq))
    clean, dlq = asyncio.run(run())
    items = [i for msg in clean for i in msg if i["id"] == app_id]
    assert len(items) == 1 and items[0]["applicant"]["term"] in (36, 60)
    dead = [d for d in dlq if d["id"] == app_id + 1]
    assert len(dead) == 1 and dead[0]["reason"] == "not UTF-8" and dead[0]["stage"] == "filter"


def test_decision_agent_routes_by_policy(broker, real_producer):
    base = random.randrange(10**9, 2 * 10**9)
    recs = []
    for i, grade in enumerate("AF"):
        raw = raw_applicant(base + i)
        raw.update(grade=grade, sub_grade=f"{grade}1", annual_inc="90000")
        from credit_core.fields import clean_record
        recs.append({"id": base + i, "applicant": clean_record(raw), "ingested_at": 1,
                     "provenance": {"topic": "applicants.raw", "partition": 0, "offset": i, "timestamp_ms": 1,
                                    "source": "t", "seq": i}})

    async def run():
        p = await real_producer()
        try:
            async with decision_agent.test_context() as agent:
                await agent.put(dumps(recs), key=str(base).encode())
                await asyncio.sleep(0.5)
        finally:
            emitter.use_producer(None)
            await p.stop()
        return (await _read(broker.bootstrap, settings.topic_eligible),
                await _read(broker.bootstrap, settings.topic_scored))
    eligible, scored = asyncio.run(run())
    assert [i["id"] for m in eligible for i in m if i["id"] in (base, base + 1)] == [base]
    declined = [d for m in scored for d in m if d["id"] in (base, base + 1)]
    assert [d["id"] for d in declined] == [base + 1] and declined[0]["decided_by"] == "policy"
