"""The topology's settings: every value from an environment variable, with defaults that work on the local stack."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Mapping

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it.
DEFAULT_KAFKA_BROKER = "kafka://127.0.0.1:9092"       # KAFKA_BROKER
DEFAULT_APP_ID = "credit-risk-topology"               # TOPOLOGY_APP_ID (the consumer group)
DEFAULT_MODE = "pipeline"                             # TOPOLOGY_MODE: pipeline | literal | passthrough
DEFAULT_TOPIC_PARTITIONS = 4                          # TOPIC_PARTITIONS
DEFAULT_TOPIC_RAW = "applicants.raw"                  # TOPIC_RAW
DEFAULT_TOPIC_CLEAN = "applicants.clean"              # TOPIC_CLEAN
DEFAULT_TOPIC_ELIGIBLE = "applicants.eligible"        # TOPIC_ELIGIBLE
DEFAULT_TOPIC_SCORED = "applicants.scored"            # TOPIC_SCORED
DEFAULT_TOPIC_DECISIONS = "decisions"                 # TOPIC_DECISIONS
DEFAULT_TOPIC_DLQ = "applicants.dlq"                  # TOPIC_DLQ
DEFAULT_TOPIC_PASSTHROUGH = "applicants.passthrough"  # TOPIC_PASSTHROUGH (bench reference only)
DEFAULT_SESSION_TIMEOUT = 6.0                         # BROKER_SESSION_TIMEOUT (Tansu's join waits half of it)
DEFAULT_COMMIT_INTERVAL = 1.0                         # BROKER_COMMIT_INTERVAL (seconds)
# Tansu answers a fetch only when its max wait expires, not when data arrives: each consumer hop waits
# up to this long at low rates (faust hard-codes 1500 ms, which made p50 ~2 s over four hops).
DEFAULT_FETCH_MAX_WAIT_MS = 20                        # FETCH_MAX_WAIT_MS
DEFAULT_STREAM_BUFFER_MAXSIZE = 8                    # STREAM_BUFFER_MAXSIZE: messages faust buffers per partition
# faust reads FAUST_LOOP itself when imported (before this module), so the launchers (topology.process,
# deploy.local, the systemd unit) put the default into the worker's environment: uvloop cut the
# worker's CPU per applicant by ~5% here (asyncio's selector loop: set FAUST_LOOP=aio).
DEFAULT_FAUST_LOOP = "uvloop"                         # FAUST_LOOP
DEFAULT_WEB_ENABLED = False                           # FAUST_WEB_ENABLED
DEFAULT_WEB_PORT = 6066                               # FAUST_WEB_PORT
DEFAULT_DATADIR = os.path.join(tempfile.gettempdir(), "credit-risk-faust")  # FAUST_DATADIR
DEFAULT_RAW_CONSUMER = "aiokafka"  # RAW_CONSUMER: aiokafka (fast) | faust (an agent) reads applicants.raw
RAW_CONSUMERS = ("aiokafka", "faust")
DEFAULT_STAGE_BATCH = 500        # STAGE_BATCH: applicants per message on internal topics (1 = one per applicant)
DEFAULT_TAKE_MAX = 2000          # TAKE_MAX: messages taken per batch by filter and decision
DEFAULT_TAKE_WITHIN = 0.02       # TAKE_WITHIN: seconds to wait for a batch to fill
DEFAULT_SUBMIT_BATCH_SIZE = 500  # SUBMIT_BATCH_SIZE: applicants per POST to the risk API
DEFAULT_SUBMIT_BATCH_WITHIN = 0.05  # SUBMIT_BATCH_WITHIN: seconds
DEFAULT_SUBMIT_CONCURRENCY = 2  # SUBMIT_CONCURRENCY: submit actors per worker (POSTs in flight)
DEFAULT_SAVE_CONCURRENCY = 2    # SAVE_CONCURRENCY: save actors per worker (HBase writes in flight)
DEFAULT_SAVE_BATCH_SIZE = 2000   # SAVE_BATCH_SIZE: decisions per HBase batch write
DEFAULT_SAVE_BATCH_WITHIN = 0.05  # SAVE_BATCH_WITHIN: seconds
DEFAULT_RISK_API_URL = "http://127.0.0.1:5002"  # RISK_API_URL
DEFAULT_RISK_API_TIMEOUT = 30.0  # RISK_API_TIMEOUT: seconds per POST
DEFAULT_MAX_RAW_BYTES = 1 << 20  # MAX_RAW_BYTES: larger applicants.raw payloads go to the DLQ
DEFAULT_DLQ_ORIGINAL_MAX = 64 << 10  # DLQ_ORIGINAL_MAX: bytes of the original kept in a DLQ record
DEFAULT_RETRY_BASE = 0.2         # RETRY_BASE: first backoff delay, seconds
DEFAULT_RETRY_CAP = 10.0         # RETRY_CAP: longest backoff delay, seconds
DEFAULT_HBASE_HOST = "127.0.0.1"  # HBASE_HOST
DEFAULT_HBASE_PORT = 9090        # HBASE_PORT
DEFAULT_PRODUCER_BATCH_BYTES = 1 << 20  # PRODUCER_BATCH_BYTES: largest Kafka record batch we build
# gc.set_threshold for the worker (Python's default is 700,10,10): a worker allocates millions of
# short-lived objects per second, and the default made the collector rescan faust's large heap so
# often that it cost ~20% of the worker's CPU (measured side by side, bench.topology).
DEFAULT_GC_THRESHOLDS = "20000,50,100"   # GC_THRESHOLDS: "gen0,gen1,gen2"
MODES = ("pipeline", "literal", "passthrough")


def _get(env: Mapping[str, str], name: str, default):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    raw = raw.strip()
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {type(default).__name__}, got {raw!r}") from None
    return raw


@dataclass(frozen=True)
class Settings:
    broker: str = DEFAULT_KAFKA_BROKER
    app_id: str = DEFAULT_APP_ID
    mode: str = DEFAULT_MODE
    partitions: int = DEFAULT_TOPIC_PARTITIONS
    topic_raw: str = DEFAULT_TOPIC_RAW
    topic_clean: str = DEFAULT_TOPIC_CLEAN
    topic_eligible: str = DEFAULT_TOPIC_ELIGIBLE
    topic_scored: str = DEFAULT_TOPIC_SCORED
    topic_decisions: str = DEFAULT_TOPIC_DECISIONS
    topic_dlq: str = DEFAULT_TOPIC_DLQ
    topic_passthrough: str = DEFAULT_TOPIC_PASSTHROUGH
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    commit_interval: float = DEFAULT_COMMIT_INTERVAL
    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS
    stream_buffer_maxsize: int = DEFAULT_STREAM_BUFFER_MAXSIZE
    web_enabled: bool = DEFAULT_WEB_ENABLED
    web_port: int = DEFAULT_WEB_PORT
    datadir: str = DEFAULT_DATADIR
    raw_consumer: str = DEFAULT_RAW_CONSUMER
    stage_batch: int = DEFAULT_STAGE_BATCH
    take_max: int = DEFAULT_TAKE_MAX
    take_within: float = DEFAULT_TAKE_WITHIN
    submit_batch_size: int = DEFAULT_SUBMIT_BATCH_SIZE
    submit_batch_within: float = DEFAULT_SUBMIT_BATCH_WITHIN
    submit_concurrency: int = DEFAULT_SUBMIT_CONCURRENCY
    save_concurrency: int = DEFAULT_SAVE_CONCURRENCY
    save_batch_size: int = DEFAULT_SAVE_BATCH_SIZE
    save_batch_within: float = DEFAULT_SAVE_BATCH_WITHIN
    risk_api_url: str = DEFAULT_RISK_API_URL
    risk_api_token: str = field(default="", repr=False)
    risk_api_timeout: float = DEFAULT_RISK_API_TIMEOUT
    max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES
    dlq_original_max: int = DEFAULT_DLQ_ORIGINAL_MAX
    retry_base: float = DEFAULT_RETRY_BASE
    retry_cap: float = DEFAULT_RETRY_CAP
    hbase_host: str = DEFAULT_HBASE_HOST
    hbase_port: int = DEFAULT_HBASE_PORT
    producer_batch_bytes: int = DEFAULT_PRODUCER_BATCH_BYTES
    gc_thresholds: str = DEFAULT_GC_THRESHOLDS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"TOPOLOGY_MODE must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.raw_consumer not in RAW_CONSUMERS:
            raise ValueError(f"RAW_CONSUMER must be one of {', '.join(RAW_CONSUMERS)}, got {self.raw_consumer!r}")
        for name in ("partitions", "stage_batch", "take_max", "submit_batch_size", "save_batch_size",
                     "submit_concurrency", "save_concurrency", "fetch_max_wait_ms", "stream_buffer_maxsize",
                     "max_raw_bytes", "dlq_original_max", "web_port", "hbase_port", "producer_batch_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("session_timeout", "commit_interval", "take_within", "submit_batch_within",
                     "save_batch_within", "risk_api_timeout", "retry_base", "retry_cap"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        self.gc_threshold_values  # raises ValueError when malformed
        if not self.broker.startswith(("kafka://", "aiokafka://")):
            raise ValueError(f"KAFKA_BROKER must look like kafka://host:port, got {self.broker!r}")

    @property
    def gc_threshold_values(self) -> tuple[int, int, int]:
        """GC_THRESHOLDS as the three ints gc.set_threshold takes."""
        parts = self.gc_thresholds.split(",")
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) != 3 or min(values) < 1:
            raise ValueError(f"GC_THRESHOLDS must be three positive ints like 20000,50,100, got {self.gc_thresholds!r}")
        return values

    @property
    def literal(self) -> bool:
        """The literal port of the Storm bolts: one applicant per message, HTTP call and HBase put."""
        return self.mode == "literal"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()
        return cls(
            broker=_get(env, "KAFKA_BROKER", d.broker),
            app_id=_get(env, "TOPOLOGY_APP_ID", d.app_id),
            mode=_get(env, "TOPOLOGY_MODE", d.mode),
            partitions=_get(env, "TOPIC_PARTITIONS", d.partitions),
            topic_raw=_get(env, "TOPIC_RAW", d.topic_raw),
            topic_clean=_get(env, "TOPIC_CLEAN", d.topic_clean),
            topic_eligible=_get(env, "TOPIC_ELIGIBLE", d.topic_eligible),
            topic_scored=_get(env, "TOPIC_SCORED", d.topic_scored),
            topic_decisions=_get(env, "TOPIC_DECISIONS", d.topic_decisions),
            topic_dlq=_get(env, "TOPIC_DLQ", d.topic_dlq),
            topic_passthrough=_get(env, "TOPIC_PASSTHROUGH", d.topic_passthrough),
            session_timeout=_get(env, "BROKER_SESSION_TIMEOUT", d.session_timeout),
            commit_interval=_get(env, "BROKER_COMMIT_INTERVAL", d.commit_interval),
            fetch_max_wait_ms=_get(env, "FETCH_MAX_WAIT_MS", d.fetch_max_wait_ms),
            stream_buffer_maxsize=_get(env, "STREAM_BUFFER_MAXSIZE", d.stream_buffer_maxsize),
            web_enabled=_get(env, "FAUST_WEB_ENABLED", d.web_enabled),
            web_port=_get(env, "FAUST_WEB_PORT", d.web_port),
            datadir=_get(env, "FAUST_DATADIR", d.datadir),
            raw_consumer=_get(env, "RAW_CONSUMER", d.raw_consumer),
            stage_batch=_get(env, "STAGE_BATCH", d.stage_batch),
            take_max=_get(env, "TAKE_MAX", d.take_max),
            take_within=_get(env, "TAKE_WITHIN", d.take_within),
            submit_batch_size=_get(env, "SUBMIT_BATCH_SIZE", d.submit_batch_size),
            submit_batch_within=_get(env, "SUBMIT_BATCH_WITHIN", d.submit_batch_within),
            submit_concurrency=_get(env, "SUBMIT_CONCURRENCY", d.submit_concurrency),
            save_concurrency=_get(env, "SAVE_CONCURRENCY", d.save_concurrency),
            save_batch_size=_get(env, "SAVE_BATCH_SIZE", d.save_batch_size),
            save_batch_within=_get(env, "SAVE_BATCH_WITHIN", d.save_batch_within),
            risk_api_url=_get(env, "RISK_API_URL", d.risk_api_url).rstrip("/"),
            risk_api_token=_get(env, "RISK_API_TOKEN", d.risk_api_token),
            risk_api_timeout=_get(env, "RISK_API_TIMEOUT", d.risk_api_timeout),
            max_raw_bytes=_get(env, "MAX_RAW_BYTES", d.max_raw_bytes),
            dlq_original_max=_get(env, "DLQ_ORIGINAL_MAX", d.dlq_original_max),
            retry_base=_get(env, "RETRY_BASE", d.retry_base),
            retry_cap=_get(env, "RETRY_CAP", d.retry_cap),
            hbase_host=_get(env, "HBASE_HOST", d.hbase_host),
            hbase_port=_get(env, "HBASE_PORT", d.hbase_port),
            producer_batch_bytes=_get(env, "PRODUCER_BATCH_BYTES", d.producer_batch_bytes),
            gc_thresholds=_get(env, "GC_THRESHOLDS", d.gc_thresholds),
        )


def worker_environ(env: Mapping[str, str]) -> dict[str, str]:
    """A faust worker's environment: ``env`` with FAUST_LOOP set to its default when it is not set."""
    env = dict(env)
    if not env.get("FAUST_LOOP", "").strip():
        env["FAUST_LOOP"] = DEFAULT_FAUST_LOOP
    return env
