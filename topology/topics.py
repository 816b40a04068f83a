"""Create the topology's topics with the configured partition count (for the local stack, tests and benchmarks)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from credit_core.broker import bootstrap_servers
from topology.settings import Settings

logger = logging.getLogger(__name__)


def bootstrap_of(broker_url: str) -> str:
    """host:port[,host:port...] from KAFKA_BROKER's URL (credit_core.broker's parser)."""
    return bootstrap_servers(broker_url)


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic_raw, settings.topic_clean, settings.topic_eligible, settings.topic_scored,
            settings.topic_decisions, settings.topic_dlq, settings.topic_passthrough]


def topic_errors(response) -> list[tuple[str, int, str]]:
    """(topic, error code, message) of each topic a CreateTopics response refused, a topic that exists already
    aside (aiokafka returns the response without raising)."""
    refused = []
    for topic, code, *message in response.topic_errors:
        if code and code != TopicAlreadyExistsError.errno:
            refused.append((topic, code, (message[0] if message else None) or for_code(code).__name__))
    return refused


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the missing topics (TOPIC_PARTITIONS partitions and TOPIC_REPLICATION_FACTOR replicas each); return
    the names created; KafkaError naming the topic and the broker's reason when the broker refuses one."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_of(settings.broker), request_timeout_ms=10000)
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        wanted = [n for n in (names or topic_names(settings)) if n not in existing]
        if wanted:
            response = await admin.create_topics(
                [NewTopic(name, settings.partitions, settings.replication_factor) for name in wanted])
            refused = topic_errors(response)
            if refused:
                topic, code, reason = refused[0]
                raise for_code(code)(f"the broker refused to create topic {topic!r} ({settings.partitions} "
                                     f"partitions, replication factor {settings.replication_factor}): {reason}")
            already = {topic for topic, code, *_ in response.topic_errors if code}
            created = [name for name in wanted if name not in already]
    finally:
        await admin.close()
    if created:
        logger.info("created topics %s with %d partitions, replication factor %d", created, settings.partitions,
                    settings.replication_factor)
    return created
