"""The topology's agents: each wires a stage's pure functions (``topology.stages``) to a stream and the Emitter.

Found by faust's autodiscovery (``TopologyApp(autodiscover=...)``).  In the
bench's passthrough mode (TOPOLOGY_MODE=passthrough) the raw reader only
copies applicants.raw; the other agents stay subscribed (idle) so the worker
is the same faust worker.  With RAW_CONSUMER=aiokafka (the default) the
filter runs as a ``RawReader`` service, and ``filter_agent`` (the same work
as a faust agent) is built but not registered: faust's test contexts use it.
Each stage has its ``Instruments`` (``app.health.stage``): the handlers count
what they delivered there, the runners time batches and report their tasks.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from hbase_helper.writer import DecisionWriter
from topology.risk_client import RiskClient
from topology.stages import cleaning, saving, scoring, screening
from topology.stages.batching import StageStats
from topology.worker.app import app
from topology.worker.metrics import HBASE, RISK_API
from topology.worker.raw_reader import RawReader
from topology.worker.running import batches, run_stage, watched

logger = logging.getLogger(__name__)

settings = app.settings
cfg = app.stage_config
topics = app.pipeline_topics
emitter = app.emitter
health = app.health
raw_stage = "passthrough" if settings.mode == "passthrough" else cleaning.STAGE


def _instruments(stage: str, topic: str, tasks: int = 1, raw_reader: bool = False):
    return health.stage(stage, topic=topic, tasks=tasks, raw_reader=raw_reader)


def _run(stream, instruments, handle, *, take: int, within: float):
    async def send(dead) -> None:
        await emitter.send(settings.topic_dlq, dead, on_retry=instruments.broker_retry)
    return run_stage(stream, instruments, handle, instruments.dead_sender(send), take=take, within=within,
                     literal=cfg.one_by_one, partitions=cfg.partitions, max_original=cfg.max_original)


# -- filter: applicants.raw -> applicants.clean -----------------------------------------

filter_instruments = _instruments(raw_stage, settings.topic_raw, raw_reader=cfg.raw_reader)


async def handle_raw(msgs) -> int:
    """Clean (key, value, source) messages of applicants.raw and deliver the results; returns how many."""
    ins = filter_instruments
    tally = ins.tally()
    clean, dead, kept = cleaning.clean_batch(msgs, partitions=cfg.partitions, max_bytes=cfg.max_raw_bytes,
                                             max_original=cfg.max_original, per_message=cfg.per_message,
                                             tally=tally)
    await emitter.send_all({settings.topic_clean: clean, settings.topic_dlq: dead}, on_retry=ins.broker_retry)
    ins.delivered(tally, dead)
    if dead:
        logger.info("filter: %d of %d dead-lettered", len(dead), len(msgs))
    return len(msgs)


async def run_filter_agent(stream):
    """The filter as a faust agent body (RAW_CONSUMER=faust, the literal mode, and faust test contexts)."""
    await _run(stream, filter_instruments, handle_raw, take=cfg.take, within=cfg.take_within)


class RawFilter(RawReader):
    """The filter over applicants.raw with aiokafka's consumer group: getmany -> clean -> send -> commit."""

    stage = cleaning.STAGE
    settings = settings
    emitter = emitter
    instruments = filter_instruments
    health = health

    async def handle(self, msgs) -> int:
        return await handle_raw(msgs)


# -- passthrough (bench reference): applicants.raw copied to TOPIC_PASSTHROUGH ---------------

async def handle_passthrough(msgs) -> int:
    ins = filter_instruments
    await emitter.send(settings.topic_passthrough,
                       [(src["partition"] % cfg.partitions, key, value) for key, value, src in msgs],
                       on_retry=ins.broker_retry)
    ins.delivered(None)
    return len(msgs)


async def run_passthrough_agent(stream):
    # faust's own consumer path, as bare as it can be (the bench's reference for it): no hold, no safety net.
    ins = filter_instruments
    stats = StageStats("passthrough")
    with watched(ins.watch):
        async for events in batches(stream, cfg.take, cfg.take_within):
            started = time.monotonic()
            await emitter.send(settings.topic_passthrough,
                               [(e.message.partition % cfg.partitions, e.message.key, e.message.value)
                                for e in events], on_retry=ins.broker_retry)
            ins.delivered(None)
            busy = time.monotonic() - started
            ins.batch(busy)
            stats.add(len(events), len(events), busy)


class RawPassthrough(RawReader):
    stage = "passthrough"
    settings = settings
    emitter = emitter
    instruments = filter_instruments
    health = health

    async def handle(self, msgs) -> int:
        return await handle_passthrough(msgs)


if settings.mode == "passthrough":
    filter_agent = None
    if cfg.raw_reader:
        app.service(RawPassthrough)
    else:
        app.agent(topics.raw, name="passthrough")(run_passthrough_agent)
elif cfg.raw_reader:
    app.service(RawFilter)
    filter_agent = app.standby_agent(run_filter_agent, name="filter", channel=topics.raw)
else:
    filter_agent = app.agent(topics.raw, name="filter")(run_filter_agent)


# -- decision: applicants.clean -> applicants.eligible / applicants.scored ----------------

decision_instruments = _instruments(screening.STAGE, settings.topic_clean)


async def handle_clean(msgs) -> int:
    """Screen (key, value, source) messages of applicants.clean and deliver the results; returns the applicants."""
    ins = decision_instruments
    tally = ins.tally()
    eligible, declined, dead, n_items = screening.screen_batch(
        msgs, policy=app.policy, partitions=cfg.partitions, max_original=cfg.max_original,
        per_message=cfg.per_message, tally=tally)
    await emitter.send_all({settings.topic_eligible: eligible, settings.topic_scored: declined,
                            settings.topic_dlq: dead}, on_retry=ins.broker_retry)
    ins.delivered(tally, dead)
    return n_items


@app.agent(topics.clean, name="decision")
async def decision_agent(stream):
    await _run(stream, decision_instruments, handle_clean, take=cfg.take, within=cfg.take_within)


# -- submit: applicants.eligible -> applicants.scored -----------------------------------

submit_instruments = _instruments(scoring.STAGE, settings.topic_eligible, tasks=cfg.submit_concurrency)


@app.agent(topics.eligible, name="submit", concurrency=cfg.submit_concurrency)
async def submit_agent(stream):
    ins = submit_instruments
    client = RiskClient(settings.risk_api_url, settings.risk_api_token, timeout=settings.risk_api_timeout,
                        retry_base=cfg.retry_base, retry_cap=cfg.retry_cap, on_retry=ins.meter.retry_hook(RISK_API))
    policy_version = app.policy.version

    async def handle(msgs) -> int:
        tally = ins.tally()
        scored, dead, n_items = await scoring.score_batch(
            client, msgs, batch_size=cfg.submit_batch_size, per_message=cfg.per_message,
            policy_version=policy_version, partitions=cfg.partitions, max_original=cfg.max_original, tally=tally)
        await emitter.send_all({settings.topic_scored: scored, settings.topic_dlq: dead}, on_retry=ins.broker_retry)
        ins.delivered(tally, dead)
        return n_items

    try:
        await _run(stream, ins, handle, take=cfg.submit_take, within=cfg.submit_within)
    finally:
        await client.close()


# -- save: applicants.scored -> HBase + decisions ----------------------------------------

save_instruments = _instruments(saving.STAGE, settings.topic_scored, tasks=cfg.save_concurrency)


@app.agent(topics.scored, name="save", concurrency=cfg.save_concurrency)
async def save_agent(stream):
    ins = save_instruments
    writer = DecisionWriter(settings.hbase, metrics=settings.metrics_enabled)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hbase-save")
    on_retry = ins.meter.retry_hook(HBASE)
    on_saved = ins.meter.saved if ins.meter.enabled else None

    async def handle(msgs) -> int:
        tally = ins.tally()
        events, dead, n_items = await saving.save_batch(
            writer, executor, msgs, chunk=cfg.save_chunk, partitions=cfg.partitions,
            max_original=cfg.max_original, base=cfg.retry_base, cap=cfg.retry_cap, tally=tally,
            on_retry=on_retry, on_saved=on_saved)
        await emitter.send_all({settings.topic_decisions: events, settings.topic_dlq: dead},
                               on_retry=ins.broker_retry)
        ins.delivered(tally, dead)
        return n_items

    try:
        await _run(stream, ins, handle, take=cfg.save_take, within=cfg.save_within)
    finally:
        executor.shutdown(wait=False)
