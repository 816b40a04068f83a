"""The faust app of the ported Storm topology: ``faust -A topology.worker.app worker``.

applicants.raw -> filter -> applicants.clean -> decision -> applicants.eligible
-> submit -> applicants.scored -> save -> HBase + decisions; failures at any
stage -> applicants.dlq.  filter reads applicants.raw (one message per applicant)
with aiokafka's own consumer group inside this worker (RAW_CONSUMER=aiokafka,
see topology.worker.raw_reader); the internal topics carry batches of
applicants and are read by faust agents (``topology.worker.agents``, found by
autodiscovery).  At-least-once: every agent acks a batch only after its
downstream sends (or HBase write) succeeded; replays are harmless because
HBase rows are keyed by application id.  No tables (their changelog recovery
relies on end offsets, which Tansu reports wrongly) and no transactions
(Tansu fails InitProducerId).

Importing this module only creates the app: the environment is read when the
app is configured (faust's ``on_configured`` signal, on the first use of
``app.conf``), and the GC is tuned when a worker initialises
(``on_worker_init``).  ``app.health`` (topology.worker.monitor) watches the
stages; topology.worker.web serves GET /metrics, /health and /ready on faust's
web server.
"""

from __future__ import annotations

import gc
import logging
import os
import warnings
from typing import Any, Mapping

import faust
from faust.exceptions import AlreadyConfiguredWarning
from faust.types import AgentT

from credit_core.retry import retry_forever
from topology.policy import Policy
from topology.settings import Settings
from topology.stages.config import StageConfig, stage_config
from topology.worker import codec
from topology.worker.emit import RETRYABLE, Emitter
from topology.worker.monitor import WorkerHealth
from topology.worker.topics import PipelineTopics, pipeline_topics
from topology.worker.transport import TopologyConsumer

logger = logging.getLogger(__name__)

AGENT_MODULES = ["topology.worker.agents", "topology.worker.web"]


def faust_options(settings: Settings) -> dict[str, Any]:
    """The faust settings that come from the topology's Settings."""
    return {
        "broker": settings.broker,
        "broker_session_timeout": settings.session_timeout,
        "broker_heartbeat_interval": min(1.0, settings.session_timeout / 3),
        "broker_commit_interval": settings.commit_interval,
        "stream_buffer_maxsize": settings.stream_buffer_maxsize,  # internal messages carry ~500 applicants each
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "producer_max_batch_size": settings.producer_batch_bytes,
        "producer_max_request_size": max(settings.producer_batch_bytes, 1 << 20) + (1 << 16),
        "web_enabled": settings.web_enabled,
        "web_port": settings.web_port,
        # Only /metrics, /health and /ready (topology.worker.web): faust's /router would show which host holds
        # which partition, and there are no tables.
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "datadir": os.path.join(settings.datadir, settings.app_id),
    }


class TopologyApp(faust.App):
    """The topology's faust app: its Settings, Policy, StageConfig, topics, Emitter and health once configured."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._settings: Settings | None = None
        self._policy: Policy | None = None
        self._stage_config: StageConfig | None = None
        self._topics: PipelineTopics | None = None
        self._emitter: Emitter | None = None
        self._health: WorkerHealth | None = None
        super().__init__(
            "credit-risk-topology",   # replaced by TOPOLOGY_APP_ID when configured
            autodiscover=AGENT_MODULES,
            store="memory://",
            processing_guarantee="at_least_once",
            value_serializer=codec.register(),
            key_serializer="raw",
            consumer_auto_offset_reset="earliest",
            stream_wait_empty=False,  # on shutdown do not wait for in-flight events: they replay (at-least-once)
            topic_disable_leader=True,
            web_bind="127.0.0.1",
        )
        self.on_configured.connect(self._configure_from_settings)
        self.on_partitions_assigned.connect(self._note_partitions_assigned)

    def _configure_from_settings(self, app, conf, **kwargs) -> None:
        """faust's ``on_configured``: read the environment into Settings and Policy, and set faust's settings."""
        settings = Settings.from_env(self._env)
        self._settings = settings
        self._policy = Policy.from_env(self._env)
        self._stage_config = stage_config(settings)
        os.makedirs(settings.datadir, exist_ok=True)  # faust creates only the last level
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlreadyConfiguredWarning)
            conf.id = settings.app_id
            for name, value in faust_options(settings).items():
                setattr(conf, name, value)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self.conf  # the first use of conf configures the app (_configure_from_settings)
        return self._settings

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self.conf
        return self._policy

    @property
    def stage_config(self) -> StageConfig:
        if self._stage_config is None:
            self.conf
        return self._stage_config

    @property
    def pipeline_topics(self) -> PipelineTopics:
        if self._topics is None:
            self._topics = pipeline_topics(self, self.settings)
        return self._topics

    @property
    def emitter(self) -> Emitter:
        if self._emitter is None:
            cfg = self.stage_config
            self._emitter = Emitter(self, partitions=cfg.partitions, retry_base=cfg.retry_base,
                                    retry_cap=cfg.retry_cap)
        return self._emitter

    @property
    def health(self) -> WorkerHealth:
        if self._health is None:
            self._health = WorkerHealth(self)
        return self._health

    async def _note_partitions_assigned(self, app, assigned, **kwargs) -> None:
        """faust's ``on_partitions_assigned``: the consumer group gave this worker its partitions."""
        self.health.on_partitions_assigned(assigned)

    def standby_agent(self, fun, *, name: str, channel) -> AgentT:
        """An agent built like ``app.agent`` would, but not registered: the worker does not run it, and faust's
        test contexts can (``agent.test_context()``).  faust has no public API for an unregistered agent, so
        this is the one place that passes its private ``_on_agent_error``, as ``App.agent`` does."""
        return self.conf.Agent(fun, name=name, app=self, channel=channel, on_error=self._on_agent_error)

    def on_init_dependencies(self):
        # `faust worker` switches the web server on unless --without-web; FAUST_WEB_ENABLED decides instead,
        # so several workers on one host do not fight over port 6066 by default.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlreadyConfiguredWarning)
            self.conf.web_enabled = self.settings.web_enabled
        return super().on_init_dependencies()

    def _new_transport(self):
        # faust's consumer commits over messages still in flight (topology.worker.commits), and waits 1.5 s per
        # fetch (topology.worker.transport): ours does neither.  faust takes the Consumer class from the
        # transport; there is no setting for it.
        transport = super()._new_transport()
        transport.Consumer = TopologyConsumer
        return transport


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Collect less often (GC_THRESHOLDS) and move what exists now out of the collector's sight.

    Whatever the worker holds long-term (faust, aiokafka, the app) is frozen
    into the permanent generation, so a full collection scans only what was
    allocated since; cycles are still collected, just less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


app = TopologyApp()


@app.on_worker_init.connect
def _on_worker_init(sender, **kwargs) -> None:
    """A worker (or another faust command) is starting, its agents discovered: tune the GC for it."""
    tune_gc(sender.settings.gc_threshold_values)


@app.task
async def freeze_started_worker() -> None:
    """Once the worker's consumers, producers and agents exist, freeze them too."""
    gc.collect()
    gc.freeze()


@app.task
async def declare_topics() -> None:
    """Create the output topics with TOPIC_PARTITIONS partitions before anything is sent to them; retried like a
    send (a SIGTERM during start-up can stop the producer before this task runs: the stop cancels it)."""
    settings, topics = app.settings, app.pipeline_topics
    for topic in (topics.decisions, topics.dlq) + ((topics.passthrough,) if settings.mode == "passthrough" else ()):
        await retry_forever(topic.maybe_declare, what=f"declare {topic.get_topic_name()}", retry_on=RETRYABLE,
                            base=settings.retry_base, cap=settings.retry_cap, log=logger)
    logger.info("topology mode %s, %d partitions, policy %s %s", settings.mode, settings.partitions,
                app.policy.version, app.policy.rules)
