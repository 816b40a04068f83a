"""save: write each decision to HBase (hbase_helper, batched, in a thread), then publish it on decisions; ack after both.

HBase down or slow: the write is retried with backoff forever and the stream
waits. A decision that breaks the writer's contract (DecisionError, nothing
written) cannot be fixed by a retry: it is dead-lettered (stage "save") and
the rest of its batch is written. A raw record without a usable timestamp
(Kafka's -1, negative, missing) is not such a breach: it is saved at its
ingest time. Every decision is added to its application's history in HBase;
the current one is the latest raw record (hbase_helper.layout), whatever
order the save actors write in.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from hbase_helper.layout import DecisionError, validate_decision
from hbase_helper.settings import HBaseSettings
from hbase_helper.writer import DecisionWriter

from topology.agents.common import collect_items, run_stage
from topology.app import app, emitter, scored_topic, settings
from topology.codec import dumps
from topology.records import decision_event, decision_item_error, id_key, item_dead_letter, now_ms
from topology.retry import backoff_delays

logger = logging.getLogger(__name__)

STAGE = "save"


def split_valid(decisions: list[tuple[int, dict]]) -> tuple[list[tuple[int, dict]], list[tuple[tuple[int, dict], str]]]:
    """(decisions the writer accepts, [(decision, reason)] that break its contract)."""
    good, bad = [], []
    for pd in decisions:
        try:
            validate_decision(pd[1])
            good.append(pd)
        except DecisionError as exc:
            bad.append((pd, str(exc)))
    return good, bad


async def write_with_retry(writer: DecisionWriter, executor: ThreadPoolExecutor, rows: list[dict], *,
                           base: float, cap: float) -> int:
    """Write until HBase accepts (DecisionError propagates); returns the saved_at time used for the events."""
    loop = asyncio.get_running_loop()
    delays = backoff_delays(base, cap)
    failures = 0
    while True:
        try:
            await loop.run_in_executor(executor, writer.write, rows)
            if failures:
                logger.info("HBase write of %d rows succeeded after %d failed attempts", len(rows), failures)
            return now_ms()
        except DecisionError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            delay = next(delays)
            logger.warning("HBase write of %d rows failed (attempt %d): %s: %s; retrying in %.2fs", len(rows),
                           failures, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)


async def save_decisions(writer: DecisionWriter, executor: ThreadPoolExecutor, decisions: list[tuple[int, dict]],
                         *, chunk: int, partitions: int, max_original: int, base: float, cap: float):
    """(decision events for the decisions topic, dlq messages), after every good decision is in HBase."""
    events: list[tuple[int, bytes, bytes]] = []
    dead: list[tuple[int, bytes | None, bytes]] = []
    for start in range(0, len(decisions), chunk):
        part = decisions[start:start + chunk]
        try:
            saved_at = await write_with_retry(writer, executor, [d for _, d in part], base=base, cap=cap)
        except DecisionError:
            part, bad = split_valid(part)
            for (partition, dec), reason in bad:
                dead.append(item_dead_letter(stage=STAGE, item=dec,
                                             reason="decision breaks the HBase writer's contract",
                                             errors=[{"field": "$", "reason": reason}], partitions=partitions,
                                             max_original=max_original))
            if not part:
                continue
            saved_at = await write_with_retry(writer, executor, [d for _, d in part], base=base, cap=cap)
        for partition, dec in part:
            events.append((partition, id_key(dec["id"]), dumps(decision_event(dec, saved_at))))
    return events, dead


async def save_batch(writer: DecisionWriter, executor: ThreadPoolExecutor, msgs, *, chunk: int, partitions: int,
                     max_original: int, base: float, cap: float):
    """(messages for decisions, dlq messages, items) for (key, value, source) messages of applicants.scored."""
    decisions, dead = collect_items(msgs, partitions, max_original, STAGE, decision_item_error)
    events, dead2 = await save_decisions(writer, executor, decisions, chunk=chunk, partitions=partitions,
                                         max_original=max_original, base=base, cap=cap)
    return events, dead + dead2, len(decisions)


def make_writer() -> DecisionWriter:
    return DecisionWriter(HBaseSettings.from_env(host=settings.hbase_host, port=settings.hbase_port))


@app.agent(scored_topic, name="save", concurrency=1 if settings.literal else settings.save_concurrency)
async def save_agent(stream):
    writer = make_writer()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hbase-save")
    chunk = 1 if settings.literal else settings.save_batch_size
    take = max(1, settings.save_batch_size // max(1, settings.stage_batch // 2))

    async def handle(msgs) -> int:
        out, dead, n_items = await save_batch(writer, executor, msgs, chunk=chunk, partitions=settings.partitions,
                                              max_original=settings.dlq_original_max, base=settings.retry_base,
                                              cap=settings.retry_cap)
        await emitter.send_all({settings.topic_decisions: out, settings.topic_dlq: dead})
        return n_items

    try:
        await run_stage(stream, STAGE, handle, partial(emitter.send, settings.topic_dlq), take=take,
                        within=settings.save_batch_within, literal=settings.literal, partitions=settings.partitions,
                        max_original=settings.dlq_original_max)
    finally:
        executor.shutdown(wait=False)
