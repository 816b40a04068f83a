"""The topology's settings: every value from an environment variable, with defaults that work on the local stack."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Mapping

from credit_core.broker import KAFKA_BROKER, KAFKA_END_OFFSETS_RELIABLE, TOPIC_DLQ, TOPIC_RAW
from credit_core.config import Parser, boolean, choice, integer, nested, positive, setting, text, url
from credit_core.config import Settings as BaseSettings
from credit_core.tokens import RISK_API_TOKEN
from hbase_helper.settings import HBaseSettings

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it. KAFKA_BROKER,
# KAFKA_END_OFFSETS_RELIABLE and TOPIC_RAW are credit_core.broker's, RISK_API_TOKEN credit_core.tokens',
# HBASE_* hbase_helper.settings'.
DEFAULT_APP_ID = "credit-risk-topology"               # TOPOLOGY_APP_ID (the consumer group)
DEFAULT_MODE = "pipeline"                             # TOPOLOGY_MODE: pipeline | literal | passthrough
DEFAULT_TOPIC_PARTITIONS = 4                          # TOPIC_PARTITIONS
DEFAULT_TOPIC_REPLICATION = 1                         # TOPIC_REPLICATION_FACTOR (3 on a production Kafka)
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
# faust reads FAUST_LOOP itself when imported (before this module), so the launchers (deploy.services.FaustWorker,
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
DEFAULT_PRODUCER_BATCH_BYTES = 1 << 20  # PRODUCER_BATCH_BYTES: largest Kafka record batch we build
# gc.set_threshold for the worker (Python's default is 700,10,10): a worker allocates millions of
# short-lived objects per second, and the default made the collector rescan faust's large heap so
# often that it cost ~20% of the worker's CPU (measured side by side, bench.topology).
DEFAULT_GC_THRESHOLDS = "20000,50,100"   # GC_THRESHOLDS: "gen0,gen1,gen2"
DEFAULT_METRICS_ENABLED = True   # METRICS_ENABLED: off turns the worker's metric recording into no-ops (the bench)
DEFAULT_STALL_SECONDS = 30.0     # STALL_SECONDS: a stage with work waiting and no record processed this long is stalled
MODES = ("pipeline", "literal", "passthrough")


class _GcThresholds(Parser):
    expected = "three positive ints like 20000,50,100"

    def check(self, value: Any) -> str:
        value = super().check(value)
        gc_values(value)
        return value


def gc_values(text_value: str) -> tuple[int, int, int]:
    """"gen0,gen1,gen2" as the three ints gc.set_threshold takes; ValueError when malformed."""
    try:
        values = tuple(int(p) for p in text_value.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"must be three positive ints like 20000,50,100, got {text_value!r}")
    return values


def _count() -> integer:
    return integer(min=1)


@dataclass(frozen=True, kw_only=True)
class Settings(BaseSettings):
    broker: str = setting(KAFKA_BROKER)
    app_id: str = setting("TOPOLOGY_APP_ID", DEFAULT_APP_ID, parse=text(nonempty=True))
    mode: str = setting("TOPOLOGY_MODE", DEFAULT_MODE, parse=choice(*MODES))
    partitions: int = setting("TOPIC_PARTITIONS", DEFAULT_TOPIC_PARTITIONS, parse=_count())
    replication_factor: int = setting("TOPIC_REPLICATION_FACTOR", DEFAULT_TOPIC_REPLICATION, parse=_count())
    topic_raw: str = setting(TOPIC_RAW)
    topic_clean: str = setting("TOPIC_CLEAN", DEFAULT_TOPIC_CLEAN, parse=text(nonempty=True))
    topic_eligible: str = setting("TOPIC_ELIGIBLE", DEFAULT_TOPIC_ELIGIBLE, parse=text(nonempty=True))
    topic_scored: str = setting("TOPIC_SCORED", DEFAULT_TOPIC_SCORED, parse=text(nonempty=True))
    topic_decisions: str = setting("TOPIC_DECISIONS", DEFAULT_TOPIC_DECISIONS, parse=text(nonempty=True))
    topic_dlq: str = setting(TOPIC_DLQ)
    topic_passthrough: str = setting("TOPIC_PASSTHROUGH", DEFAULT_TOPIC_PASSTHROUGH, parse=text(nonempty=True))
    session_timeout: float = setting("BROKER_SESSION_TIMEOUT", DEFAULT_SESSION_TIMEOUT, parse=positive())
    commit_interval: float = setting("BROKER_COMMIT_INTERVAL", DEFAULT_COMMIT_INTERVAL, parse=positive())
    fetch_max_wait_ms: int = setting("FETCH_MAX_WAIT_MS", DEFAULT_FETCH_MAX_WAIT_MS, parse=_count())
    stream_buffer_maxsize: int = setting("STREAM_BUFFER_MAXSIZE", DEFAULT_STREAM_BUFFER_MAXSIZE, parse=_count())
    web_enabled: bool = setting("FAUST_WEB_ENABLED", DEFAULT_WEB_ENABLED, parse=boolean())
    web_port: int = setting("FAUST_WEB_PORT", DEFAULT_WEB_PORT, parse=integer(min=1, max=65535))
    datadir: str = setting("FAUST_DATADIR", DEFAULT_DATADIR, parse=text(nonempty=True))
    raw_consumer: str = setting("RAW_CONSUMER", DEFAULT_RAW_CONSUMER, parse=choice(*RAW_CONSUMERS))
    stage_batch: int = setting("STAGE_BATCH", DEFAULT_STAGE_BATCH, parse=_count())
    take_max: int = setting("TAKE_MAX", DEFAULT_TAKE_MAX, parse=_count())
    take_within: float = setting("TAKE_WITHIN", DEFAULT_TAKE_WITHIN, parse=positive())
    submit_batch_size: int = setting("SUBMIT_BATCH_SIZE", DEFAULT_SUBMIT_BATCH_SIZE, parse=_count())
    submit_batch_within: float = setting("SUBMIT_BATCH_WITHIN", DEFAULT_SUBMIT_BATCH_WITHIN, parse=positive())
    submit_concurrency: int = setting("SUBMIT_CONCURRENCY", DEFAULT_SUBMIT_CONCURRENCY, parse=_count())
    save_concurrency: int = setting("SAVE_CONCURRENCY", DEFAULT_SAVE_CONCURRENCY, parse=_count())
    save_batch_size: int = setting("SAVE_BATCH_SIZE", DEFAULT_SAVE_BATCH_SIZE, parse=_count())
    save_batch_within: float = setting("SAVE_BATCH_WITHIN", DEFAULT_SAVE_BATCH_WITHIN, parse=positive())
    risk_api_url: str = setting("RISK_API_URL", DEFAULT_RISK_API_URL, parse=url(strip_slash=True))
    risk_api_token: str | None = setting(RISK_API_TOKEN)
    risk_api_timeout: float = setting("RISK_API_TIMEOUT", DEFAULT_RISK_API_TIMEOUT, parse=positive())
    max_raw_bytes: int = setting("MAX_RAW_BYTES", DEFAULT_MAX_RAW_BYTES, parse=_count())
    dlq_original_max: int = setting("DLQ_ORIGINAL_MAX", DEFAULT_DLQ_ORIGINAL_MAX, parse=_count())
    retry_base: float = setting("RETRY_BASE", DEFAULT_RETRY_BASE, parse=positive())
    retry_cap: float = setting("RETRY_CAP", DEFAULT_RETRY_CAP, parse=positive())
    hbase: HBaseSettings = nested(HBaseSettings)
    producer_batch_bytes: int = setting("PRODUCER_BATCH_BYTES", DEFAULT_PRODUCER_BATCH_BYTES, parse=_count())
    gc_thresholds: str = setting("GC_THRESHOLDS", DEFAULT_GC_THRESHOLDS, parse=_GcThresholds())
    metrics_enabled: bool = setting("METRICS_ENABLED", DEFAULT_METRICS_ENABLED, parse=boolean())
    # Tansu's end offsets are wrong (credit_core.broker): false there, and the worker reports lag as
    # unavailable instead of a wrong figure.
    end_offsets_reliable: bool = setting(KAFKA_END_OFFSETS_RELIABLE)
    stall_seconds: float = setting("STALL_SECONDS", DEFAULT_STALL_SECONDS, parse=positive())

    @property
    def gc_threshold_values(self) -> tuple[int, int, int]:
        """GC_THRESHOLDS as the three ints gc.set_threshold takes."""
        return gc_values(self.gc_thresholds)

    @property
    def literal(self) -> bool:
        """The literal port of the Storm bolts: one applicant per message, HTTP call and HBase put."""
        return self.mode == "literal"


def worker_environ(env: Mapping[str, str]) -> dict[str, str]:
    """A faust worker's environment: ``env`` with FAUST_LOOP set to its default when it is not set."""
    env = dict(env)
    if not env.get("FAUST_LOOP", "").strip():
        env["FAUST_LOOP"] = DEFAULT_FAUST_LOOP
    return env
