"""Producer settings: keyword overrides, then the environment, then the defaults below."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it.
DEFAULT_API_URL = "http://127.0.0.1:5001"          # APPLICANT_API_URL
DEFAULT_API_TOKEN = None                           # APPLICANT_API_TOKEN (secret: environment only)
DEFAULT_KAFKA_BROKER = "kafka://127.0.0.1:9092"    # KAFKA_BROKER (kafka://host:port[,host:port])
DEFAULT_RAW_TOPIC = "applicants.raw"               # RAW_TOPIC
DEFAULT_CHECKPOINT = ".run/producer.checkpoint"    # PRODUCER_CHECKPOINT
DEFAULT_INTERVAL = 2.0                             # PRODUCER_INTERVAL   (seconds between polls once drained)
DEFAULT_BATCH = 1_000                              # PRODUCER_BATCH      (page size asked of the API, <= 5,000)
DEFAULT_LINGER_MS = 5                              # PRODUCER_LINGER_MS
DEFAULT_MAX_BATCH_BYTES = 512 * 1024               # PRODUCER_MAX_BATCH_BYTES (Kafka producer batch size)
DEFAULT_HTTP_TIMEOUT = 30.0                        # PRODUCER_HTTP_TIMEOUT (seconds per API request)
DEFAULT_SEND_TIMEOUT_MS = 30_000                   # PRODUCER_SEND_TIMEOUT_MS (broker ack wait before a retry)
DEFAULT_BACKOFF_START = 0.5                        # PRODUCER_BACKOFF_START (first wait after a failure, s)
DEFAULT_BACKOFF_MAX = 30.0                         # PRODUCER_BACKOFF_MAX   (longest wait between retries, s)
DEFAULT_LOG_EVERY = 10.0                           # PRODUCER_LOG_EVERY  (seconds between rate log lines)

MAX_BATCH = 5_000

_ENV = {
    "api_url": "APPLICANT_API_URL", "api_token": "APPLICANT_API_TOKEN", "broker": "KAFKA_BROKER",
    "topic": "RAW_TOPIC", "checkpoint": "PRODUCER_CHECKPOINT", "interval": "PRODUCER_INTERVAL",
    "batch": "PRODUCER_BATCH", "linger_ms": "PRODUCER_LINGER_MS", "max_batch_bytes": "PRODUCER_MAX_BATCH_BYTES",
    "http_timeout": "PRODUCER_HTTP_TIMEOUT", "send_timeout_ms": "PRODUCER_SEND_TIMEOUT_MS",
    "backoff_start": "PRODUCER_BACKOFF_START", "backoff_max": "PRODUCER_BACKOFF_MAX",
    "log_every": "PRODUCER_LOG_EVERY",
}


@dataclass(frozen=True)
class ProducerSettings:
    api_url: str = DEFAULT_API_URL
    api_token: str | None = DEFAULT_API_TOKEN
    broker: str = DEFAULT_KAFKA_BROKER
    topic: str = DEFAULT_RAW_TOPIC
    checkpoint: str = DEFAULT_CHECKPOINT
    interval: float = DEFAULT_INTERVAL
    batch: int = DEFAULT_BATCH
    linger_ms: int = DEFAULT_LINGER_MS
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    send_timeout_ms: int = DEFAULT_SEND_TIMEOUT_MS
    backoff_start: float = DEFAULT_BACKOFF_START
    backoff_max: float = DEFAULT_BACKOFF_MAX
    log_every: float = DEFAULT_LOG_EVERY

    def __post_init__(self) -> None:
        if not isinstance(self.api_url, str) or not self.api_url.startswith(("http://", "https://")):
            raise ValueError(f"APPLICANT_API_URL must be an http(s) URL, got {self.api_url!r}")
        if not isinstance(self.topic, str) or not self.topic:
            raise ValueError("RAW_TOPIC must be a non-empty string")
        bootstrap_servers(self.broker)  # validates
        if not isinstance(self.batch, int) or not 1 <= self.batch <= MAX_BATCH:
            raise ValueError(f"PRODUCER_BATCH must be an integer in 1..{MAX_BATCH}, got {self.batch!r}")
        for name in ("interval", "http_timeout", "backoff_start", "backoff_max", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{_ENV[name]} must be a positive number, got {value!r}")
        for name in ("linger_ms", "max_batch_bytes", "send_timeout_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{_ENV[name]} must be a non-negative integer, got {value!r}")
        if self.backoff_max < self.backoff_start:
            raise ValueError("PRODUCER_BACKOFF_MAX must be >= PRODUCER_BACKOFF_START")

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.broker)

    def with_(self, **changes: Any) -> "ProducerSettings":
        return replace(self, **changes)


def bootstrap_servers(url: str) -> str:
    """'kafka://h1:9092,h2:9092' (or bare 'h1:9092') -> 'h1:9092,h2:9092'."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("KAFKA_BROKER must be a non-empty string")
    text = url.strip()
    if "://" in text:
        scheme, text = text.split("://", 1)
        if scheme != "kafka":
            raise ValueError(f"KAFKA_BROKER must start with kafka://, got {url!r}")
    hosts = [h.strip().rstrip("/") for h in text.split(",") if h.strip()]
    if not hosts or any(":" not in h for h in hosts):
        raise ValueError(f"KAFKA_BROKER must list host:port pairs, got {url!r}")
    return ",".join(hosts)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> ProducerSettings:
    """Settings from keyword overrides (field names), else the environment, else defaults."""
    env = os.environ if environ is None else environ
    unknown = set(overrides) - set(_ENV)
    if unknown:
        raise TypeError(f"unknown producer settings: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for f in fields(ProducerSettings):
        if f.name in overrides and overrides[f.name] is not None:
            values[f.name] = overrides[f.name]
            continue
        raw = env.get(_ENV[f.name])
        if raw is None or raw == "":
            continue
        if f.type in ("int",):
            try:
                values[f.name] = int(raw)
            except ValueError:
                raise ValueError(f"{_ENV[f.name]} must be an integer, got {raw!r}") from None
        elif f.type in ("float",):
            try:
                values[f.name] = float(raw)
            except ValueError:
                raise ValueError(f"{_ENV[f.name]} must be a number, got {raw!r}") from None
        else:
            values[f.name] = raw
    return ProducerSettings(**values)
