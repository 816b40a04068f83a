"""topology.topics.ensure_topics against a real broker: partitions and replicas as configured, refusals reported."""

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import InvalidReplicationFactorError

from topology.settings import Settings
from topology.topics import ensure_topics


def settings(broker, **env) -> Settings:
    return Settings.from_env({"KAFKA_BROKER": broker.url, **env})


async def replicas(broker, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return sorted(len(p["replicas"]) for p in described["partitions"])
    finally:
        await admin.close()


@pytest.mark.apache_only
def test_topics_get_the_configured_replicas_and_a_refused_topic_is_an_error_naming_it(stack_servers):
    broker = stack_servers.broker("apache")     # one Apache Kafka broker
    name = f"rf-{uuid.uuid4().hex[:8]}"
    assert asyncio.run(ensure_topics(settings(broker, TOPIC_PARTITIONS="3", TOPIC_REPLICATION_FACTOR="1"),
                                     [name])) == [name]
    assert asyncio.run(replicas(broker, name)) == [1, 1, 1]
    assert asyncio.run(ensure_topics(settings(broker), [name])) == []     # exists: nothing to do

    refused = f"rf3-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InvalidReplicationFactorError, match=f"{refused}.*replication factor 3"):
        asyncio.run(ensure_topics(settings(broker, TOPIC_REPLICATION_FACTOR="3"), [refused]))


def test_the_replication_factor_is_a_positive_count():
    with pytest.raises(ValueError, match="TOPIC_REPLICATION_FACTOR"):
        Settings.from_env({"TOPIC_REPLICATION_FACTOR": "0"})
    assert Settings.from_env({}).replication_factor == 1
