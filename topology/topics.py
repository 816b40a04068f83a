"""Create the topology's topics with the configured partition count (for the local stack, tests and benchmarks)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from credit_core.broker import bootstrap_servers
from topology.settings import Settings

logger = logging.getLogger(__name__)


def bootstrap_of(broker_url: str) -> str:
    """host:port[,host:port...] from KAFKA_BROKER's URL (credit_core.broker's parser)."""
    return bootstrap_servers(broker_url)


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic_raw, settings.topic_clean, settings.topic_eligible, settings.topic_scored,
            settings.topic_decisions, settings.topic_dlq, settings.topic_passthrough]


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the missing topics (TOPIC_PARTITIONS partitions each); return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_of(settings.broker), request_timeout_ms=10000)
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        wanted = [n for n in (names or topic_names(settings)) if n not in existing]
        for name in wanted:
            try:
                await admin.create_topics([NewTopic(name, settings.partitions, 1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    if created:
        logger.info("created topics %s with %d partitions", created, settings.partitions)
    return created
