"""Send a replay plan: the replayed records to applicants.raw, then one ledger entry per dead letter.

Order per chunk: the records, each with its replay headers, are sent and
acknowledged (acks=all) first; only then are their ledger entries written.
A crash in between leaves replayed records the ledger does not name, so a
later run may replay them once more (harmless: a replayed applicant lands on
its own HBase row); the other order could mark a dead letter replayed that
never was, and lose it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from credit_core.clock import now_ms
from credit_core.dlq.ledger import ledger_entry
from credit_core.dlq.replay import Planned
from credit_core.dlq.settings import DlqSettings

logger = logging.getLogger(__name__)

CHUNK = 200                    # dead letters sent and acknowledged per round
MAX_REQUEST_BYTES = 8 << 20    # a replayed value may be a fixed one, larger than DLQ_ORIGINAL_MAX


@dataclass(frozen=True)
class Sent:
    """A dead letter replayed: where its records went on the raw topic (topic, partition, offset)."""

    planned: Planned
    raw: list[tuple[str, int, int]]


async def ensure_ledger(settings: DlqSettings) -> bool:
    """Create the ledger topic (one partition) when it does not exist; True when it was created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        if settings.ledger in set(await admin.list_topics()):
            return False
        try:
            await admin.create_topics([NewTopic(settings.ledger, 1, settings.ledger_replication)])
        except TopicAlreadyExistsError:
            return False
    finally:
        await admin.close()
    logger.info("created the replay ledger topic %s", settings.ledger)
    return True


async def send_plan(settings: DlqSettings, planned: Sequence[Planned], *, run: str,
                    progress: Callable[[int], None] | None = None) -> list[Sent]:
    """Publish every planned replay and its ledger entry; return where each went. Raises the broker's error
    (what was acknowledged before stays sent and recorded)."""
    await ensure_ledger(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, client_id="dlq-replay", acks="all",
                                enable_idempotence=False,  # Tansu rejects InitProducerId
                                max_request_size=MAX_REQUEST_BYTES, request_timeout_ms=settings.send_timeout_ms)
    await producer.start()
    sent: list[Sent] = []
    try:
        for start in range(0, len(planned), CHUNK):
            part = planned[start:start + CHUNK]
            futures = [[await producer.send(settings.topic_raw, value, key=key, headers=p.headers)
                        for key, value in p.messages] for p in part]
            chunk_sent = []
            for p, futs in zip(part, futures):
                metas = await asyncio.gather(*futs)
                chunk_sent.append(Sent(p, [(m.topic, m.partition, m.offset) for m in metas]))
            at = now_ms()
            ledger_futs = []
            for s in chunk_sent:
                key, value = ledger_entry(s.planned.dead_letter, run=run, at_ms=at, attempt=s.planned.attempt,
                                          raw=s.raw[0] if s.raw else None, again=s.planned.again,
                                          fixed_sha256=s.planned.fixed_sha256)
                ledger_futs.append(await producer.send(settings.ledger, value, key=key, partition=0))
            await asyncio.gather(*ledger_futs)
            sent.extend(chunk_sent)
            if progress is not None:
                progress(len(part))
    finally:
        await producer.stop()
    return sent
