"""The DLQ tool's settings: every value from an environment variable, with defaults that work on the local stack."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from credit_core.broker import KAFKA_BROKER, KAFKA_END_OFFSETS_RELIABLE, TOPIC_DLQ, TOPIC_RAW, bootstrap_servers
from credit_core.config import Settings, integer, setting, text

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it. KAFKA_BROKER, TOPIC_RAW,
# TOPIC_DLQ and KAFKA_END_OFFSETS_RELIABLE are credit_core.broker's.
LEDGER_SUFFIX = ".replays"           # DLQ_LEDGER_TOPIC defaults to TOPIC_DLQ + this
DEFAULT_LEDGER_REPLICATION = 1       # DLQ_LEDGER_REPLICATION (replication factor of the ledger, when created)
DEFAULT_IDLE_POLLS = 3               # DLQ_IDLE_POLLS: empty fetches in a row that end a read (unreliable offsets)
DEFAULT_POLL_MS = 300                # DLQ_POLL_MS: how long each of those fetches waits
DEFAULT_MAX_ATTEMPTS = 2             # DLQ_MAX_ATTEMPTS: no replay makes an attempt beyond this (2: replay once)
DEFAULT_SEND_TIMEOUT_MS = 30_000     # DLQ_SEND_TIMEOUT_MS: broker acknowledgement wait per send


@dataclass(frozen=True, kw_only=True)
class DlqSettings(Settings):
    broker: str = setting(KAFKA_BROKER)
    topic_raw: str = setting(TOPIC_RAW)
    topic_dlq: str = setting(TOPIC_DLQ)
    ledger_topic: str | None = setting("DLQ_LEDGER_TOPIC", None, parse=text(nonempty=True))
    ledger_replication: int = setting("DLQ_LEDGER_REPLICATION", DEFAULT_LEDGER_REPLICATION, parse=integer(min=1))
    end_offsets_reliable: bool = setting(KAFKA_END_OFFSETS_RELIABLE)
    idle_polls: int = setting("DLQ_IDLE_POLLS", DEFAULT_IDLE_POLLS, parse=integer(min=1, max=100))
    poll_ms: int = setting("DLQ_POLL_MS", DEFAULT_POLL_MS, parse=integer(min=10, max=60_000))
    max_attempts: int = setting("DLQ_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, parse=integer(min=2, max=1_000_000))
    send_timeout_ms: int = setting("DLQ_SEND_TIMEOUT_MS", DEFAULT_SEND_TIMEOUT_MS, parse=integer(min=1000))

    @property
    def bootstrap(self) -> str:
        """host:port[,host:port...] for aiokafka's bootstrap_servers."""
        return bootstrap_servers(self.broker)

    @property
    def ledger(self) -> str:
        """The replay ledger's topic: DLQ_LEDGER_TOPIC, else TOPIC_DLQ + '.replays'."""
        return self.ledger_topic or self.topic_dlq + LEDGER_SUFFIX
