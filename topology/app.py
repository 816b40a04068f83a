"""The faust app (`faust -A topology.app worker`): topics, settings and the agents of the ported Storm topology.

applicants.raw -> filter -> applicants.clean -> decision -> applicants.eligible
-> submit -> applicants.scored -> save -> HBase + decisions; failures at any
stage -> applicants.dlq.  filter reads applicants.raw (one message per applicant)
with aiokafka's own consumer group inside this worker (RAW_CONSUMER=aiokafka,
see topology.agents.common.RawReader); the internal topics carry batches of
applicants and are read by faust agents.  At-least-once: every agent acks a batch only after
its downstream sends (or HBase write) succeeded; replays are harmless because
HBase rows are keyed by application id.  No tables (their changelog recovery
relies on end offsets, which Tansu reports wrongly) and no transactions
(Tansu fails InitProducerId).
"""

from __future__ import annotations

import gc
import logging
import os
import warnings

import faust
from faust.exceptions import AlreadyConfiguredWarning
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from topology import codec  # noqa: F401  (registers the "orjson" codec)
from topology.commits import ContiguousCommitConsumer
from topology.emit import Emitter
from topology.policy import Policy
from topology.settings import Settings

logger = logging.getLogger(__name__)

settings = Settings.from_env()
policy = Policy.from_env()
os.makedirs(settings.datadir, exist_ok=True)  # faust creates only the last level

class TopologyApp(faust.App):
    def on_init_dependencies(self):
        # `faust worker` switches the web server on unless --without-web; FAUST_WEB_ENABLED decides instead,
        # so several workers on one host do not fight over port 6066 by default.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlreadyConfiguredWarning)
            self.conf.web_enabled = settings.web_enabled
        return super().on_init_dependencies()

    def _new_transport(self):
        # faust's consumer commits over messages still in flight (topology.commits): ours does not.
        transport = super()._new_transport()
        transport.Consumer = ContiguousCommitConsumer
        return transport


app = TopologyApp(
    settings.app_id,
    broker=settings.broker,
    store="memory://",
    autodiscover=False,
    processing_guarantee="at_least_once",
    value_serializer=codec.CODEC_NAME,
    key_serializer="raw",
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=min(1.0, settings.session_timeout / 3),
    broker_commit_interval=settings.commit_interval,
    consumer_auto_offset_reset="earliest",
    stream_buffer_maxsize=settings.stream_buffer_maxsize,  # internal messages carry ~500 applicants each
    stream_wait_empty=False,  # on shutdown do not wait for in-flight events: they replay (at-least-once)
    topic_partitions=settings.partitions,
    topic_disable_leader=True,
    producer_max_batch_size=settings.producer_batch_bytes,
    producer_max_request_size=max(settings.producer_batch_bytes, 1 << 20) + (1 << 16),
    web_enabled=settings.web_enabled,
    web_port=settings.web_port,
    web_bind="127.0.0.1",
    datadir=os.path.join(settings.datadir, settings.app_id),
)


def _create_worker_consumer(self, transport, _create=AIOKafkaConsumerThread._create_worker_consumer):
    # faust passes fetch_max_wait_ms=1500 with no setting; set ours before the consumer starts its fetcher.
    consumer = _create(self, transport)
    consumer._fetch_max_wait_ms = settings.fetch_max_wait_ms
    return consumer


AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer


def _topic(name: str) -> faust.TopicT:
    return app.topic(name, partitions=settings.partitions, key_serializer="raw", value_serializer="raw")


raw_topic = _topic(settings.topic_raw)
clean_topic = _topic(settings.topic_clean)
eligible_topic = _topic(settings.topic_eligible)
scored_topic = _topic(settings.topic_scored)
decisions_topic = _topic(settings.topic_decisions)
dlq_topic = _topic(settings.topic_dlq)
passthrough_topic = _topic(settings.topic_passthrough)

emitter = Emitter(app, partitions=settings.partitions, retry_base=settings.retry_base, retry_cap=settings.retry_cap)


def tune_gc() -> None:
    """Collect less often (GC_THRESHOLDS) and move what exists now out of the collector's sight.

    Whatever the worker holds long-term (faust, aiokafka, the app) is frozen
    into the permanent generation, so a full collection scans only what was
    allocated since; cycles are still collected, just less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*settings.gc_threshold_values)


tune_gc()


@app.task
async def freeze_started_worker() -> None:
    """Once the worker's consumers, producers and agents exist, freeze them too."""
    gc.collect()
    gc.freeze()


@app.task
async def declare_topics() -> None:
    """Create the output topics with TOPIC_PARTITIONS partitions before anything is sent to them."""
    for topic in (decisions_topic, dlq_topic) + ((passthrough_topic,) if settings.mode == "passthrough" else ()):
        await topic.maybe_declare()
    logger.info("topology mode %s, %d partitions, policy %s %s", settings.mode, settings.partitions,
                policy.version, policy.rules)


# The agents register themselves on import. In the bench's passthrough mode the raw reader only copies
# applicants.raw; the other agents stay subscribed (idle) so the worker is the same faust worker.
from topology.agents import decision, save, submit  # noqa: E402,F401

if settings.mode == "passthrough":
    from topology.agents import passthrough  # noqa: E402,F401
else:
    from topology.agents import filter  # noqa: E402,F401
