"""Producer settings: keyword overrides, then the environment, then the defaults below."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from credit_core.broker import KAFKA_BROKER, TOPIC_RAW, bootstrap_servers
from credit_core.config import ConfigError, Settings, integer, positive, setting, text, url
from credit_core.tokens import APPLICANT_API_TOKEN

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it. KAFKA_BROKER is
# and TOPIC_RAW are credit_core.broker's, APPLICANT_API_TOKEN credit_core.tokens' (secret: environment only).
DEFAULT_API_URL = "http://127.0.0.1:5001"          # APPLICANT_API_URL
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
DEFAULT_METRICS_HOST = "127.0.0.1"                 # PRODUCER_METRICS_HOST (where GET /metrics listens)
DEFAULT_METRICS_PORT = 9464                        # PRODUCER_METRICS_PORT (0: no metrics server)

MAX_BATCH = 5_000


@dataclass(frozen=True, kw_only=True)
class ProducerSettings(Settings):
    api_url: str = setting("APPLICANT_API_URL", DEFAULT_API_URL, parse=url())
    api_token: str | None = setting(APPLICANT_API_TOKEN)
    broker: str = setting(KAFKA_BROKER)
    topic: str = setting(TOPIC_RAW)
    checkpoint: str = setting("PRODUCER_CHECKPOINT", DEFAULT_CHECKPOINT, parse=text(nonempty=True))
    interval: float = setting("PRODUCER_INTERVAL", DEFAULT_INTERVAL, parse=positive())
    batch: int = setting("PRODUCER_BATCH", DEFAULT_BATCH, parse=integer(min=1, max=MAX_BATCH))
    linger_ms: int = setting("PRODUCER_LINGER_MS", DEFAULT_LINGER_MS, parse=integer(min=0))
    max_batch_bytes: int = setting("PRODUCER_MAX_BATCH_BYTES", DEFAULT_MAX_BATCH_BYTES, parse=integer(min=0))
    http_timeout: float = setting("PRODUCER_HTTP_TIMEOUT", DEFAULT_HTTP_TIMEOUT, parse=positive())
    send_timeout_ms: int = setting("PRODUCER_SEND_TIMEOUT_MS", DEFAULT_SEND_TIMEOUT_MS, parse=integer(min=0))
    backoff_start: float = setting("PRODUCER_BACKOFF_START", DEFAULT_BACKOFF_START, parse=positive())
    backoff_max: float = setting("PRODUCER_BACKOFF_MAX", DEFAULT_BACKOFF_MAX, parse=positive())
    log_every: float = setting("PRODUCER_LOG_EVERY", DEFAULT_LOG_EVERY, parse=positive())
    metrics_host: str = setting("PRODUCER_METRICS_HOST", DEFAULT_METRICS_HOST, parse=text(nonempty=True))
    metrics_port: int = setting("PRODUCER_METRICS_PORT", DEFAULT_METRICS_PORT, parse=integer(min=0, max=65535))

    def validate(self) -> None:
        if self.backoff_max < self.backoff_start:
            raise ConfigError("PRODUCER_BACKOFF_MAX must be >= PRODUCER_BACKOFF_START, "
                              f"got {self.backoff_max!r} < {self.backoff_start!r}")

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.broker)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> ProducerSettings:
    """Settings from keyword overrides (field names), else the environment, else defaults."""
    return ProducerSettings.from_env(environ, **overrides)
