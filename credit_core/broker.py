"""Kafka settings the producer and the workers share (KAFKA_BROKER, TOPIC_RAW) and the one bootstrap parser."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from credit_core.config import Parser, Settings, Spec, boolean, setting, text

logger = logging.getLogger(__name__)

DEFAULT_KAFKA_BROKER = "kafka://127.0.0.1:9092"   # KAFKA_BROKER (kafka://host:port[,host:port...])
DEFAULT_TOPIC_RAW = "applicants.raw"             # TOPIC_RAW (RAW_TOPIC, the producer's old name, until the next release)
DEFAULT_TOPIC_DLQ = "applicants.dlq"             # TOPIC_DLQ
DEFAULT_END_OFFSETS_RELIABLE = True              # KAFKA_END_OFFSETS_RELIABLE (false on Tansu)
SCHEMES = ("kafka", "aiokafka")                   # faust's names for its Kafka driver
EXPECTED = "kafka://host:port[,host:port...]"


def bootstrap_servers(url: str) -> str:
    """'kafka://h1:9092,h2:9092' -> 'h1:9092,h2:9092'.

    Accepted: kafka:// or aiokafka:// (once in front or before each address), bare host:port, addresses
    separated by ',' or ';' (faust's separator), trailing slashes. ValueError otherwise.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"KAFKA_BROKER must be {EXPECTED}, got {url!r}")
    hosts = []
    for item in re.split(r"[,;]", url.strip()):
        item = item.strip()
        if not item:
            continue
        if "://" in item:
            scheme, item = item.split("://", 1)
            if scheme.lower() not in SCHEMES:
                raise ValueError(f"KAFKA_BROKER must be {EXPECTED}, got {url!r}")
        item = item.strip().rstrip("/")
        host, sep, port = item.rpartition(":")
        if not sep or not host or "/" in item or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"KAFKA_BROKER must be {EXPECTED}, got {url!r}")
        hosts.append(item)
    if not hosts:
        raise ValueError(f"KAFKA_BROKER must be {EXPECTED}, got {url!r}")
    return ",".join(hosts)


class BrokerURL(Parser):
    """A broker URL faust takes; a bare host:port list gets kafka:// in front."""

    expected = EXPECTED

    def check(self, value: Any) -> str:
        value = super().check(value)
        try:
            bootstrap_servers(value)
        except ValueError:
            raise ValueError(f"must be {EXPECTED}, got {value!r}") from None
        value = value.strip()
        return value if "://" in value else f"kafka://{value}"


KAFKA_BROKER = Spec("KAFKA_BROKER", DEFAULT_KAFKA_BROKER, BrokerURL())
# The producer writes applicants here and the workers read them: one variable for both.
TOPIC_RAW = Spec("TOPIC_RAW", DEFAULT_TOPIC_RAW, text(nonempty=True), deprecated=("RAW_TOPIC",))
# The workers write dead letters here; the DLQ tool (credit_core.dlq, `python -m deploy dlq`) reads them.
TOPIC_DLQ = Spec("TOPIC_DLQ", DEFAULT_TOPIC_DLQ, text(nonempty=True))
# Whether the broker's end offsets (ListOffsets) can be trusted: Tansu's are wrong (DESIGN.md), so the
# embedded stack sets false and readers fall back to reading until the topic stays empty.
KAFKA_END_OFFSETS_RELIABLE = Spec("KAFKA_END_OFFSETS_RELIABLE", DEFAULT_END_OFFSETS_RELIABLE, boolean())


@dataclass(frozen=True, kw_only=True)
class KafkaSettings(Settings):
    """Where the Kafka brokers are."""

    broker: str = setting(KAFKA_BROKER)

    @property
    def bootstrap(self) -> str:
        """host:port[,host:port...] for aiokafka's bootstrap_servers."""
        return bootstrap_servers(self.broker)
