"""Send stored applicants to the raw topic again, in the producer's envelope, marked as a reconciliation replay.

Idempotent: each message is keyed by the application id, like the producer's, and the
save stage keys the HBase row by that id, so a republished applicant lands on its own
row whether or not the original arrives too. The envelope is the producer's
(``credit_core.messages.envelope.build_message``) with provenance ``source`` = ``reconcile`` and a
``replay`` marker (the original source, when and why); the producer's ``seq`` is kept,
so the replay orders with the original applicant.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Iterable, Iterator, Mapping, Sequence

import orjson

from credit_core.messages.envelope import build_message
from producer.producer import publish

logger = logging.getLogger(__name__)

REPLAY_SOURCE = "reconcile"
REPLAY_REASON = "in neither HBase nor the DLQ"
DEFAULT_CHUNK = 1_000   # applicants read from the store and acknowledged by the broker per round


def replay_message(row_json: str | bytes, *, fetched_at: str, run_id: str,
                   reason: str = REPLAY_REASON) -> tuple[bytes, bytes]:
    """(key, value) for a store row (the API's JSON form of an applicant), marked as a replay."""
    applicant = orjson.loads(row_json)
    original_source = applicant.get("source")
    applicant["source"] = REPLAY_SOURCE
    key, value = build_message(applicant, fetched_at)
    envelope = orjson.loads(value)
    envelope["provenance"]["replay"] = {"by": REPLAY_SOURCE, "run": run_id, "reason": reason,
                                        "original_source": original_source, "at": fetched_at}
    return key, orjson.dumps(envelope)


def stored_rows(mysql_url: str, ids: Iterable[int]) -> Iterator[tuple[int, str | None]]:
    """(id, the applicant's JSON as the applicant API serves it, or None when gone) for each id, one connection."""
    from applicant_api import repository
    from applicant_api.db import connect

    conn = connect(mysql_url, autocommit=True)
    try:
        for app_id in ids:
            yield app_id, repository.one(conn, app_id)
    finally:
        conn.close()


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def republish_ids(ids: Sequence[int], *, mysql_url: str, env: Mapping[str, str], chunk: int = DEFAULT_CHUNK) -> int:
    """Publish the stored applicants ``ids`` to the producer's raw topic (TOPIC_RAW); return how many were sent.

    Waits for the broker's acknowledgement of every message (acks=all) before returning;
    an id no longer in the store is logged and skipped.
    """
    from producer.settings import load_settings

    settings = load_settings(environ=env)
    return asyncio.run(_republish(list(ids), mysql_url, settings, chunk))


async def _republish(ids: list[int], mysql_url: str, settings, chunk: int) -> int:
    from aiokafka import AIOKafkaProducer

    run_id = uuid.uuid4().hex[:12]
    kafka = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, client_id="reconcile-republish", acks="all",
                             enable_idempotence=False,  # as the producer: Tansu rejects InitProducerId
                             linger_ms=settings.linger_ms, max_batch_size=settings.max_batch_bytes,
                             request_timeout_ms=settings.send_timeout_ms)
    await kafka.start()
    sent = 0
    try:
        for part in _chunks(ids, chunk):
            rows = await asyncio.to_thread(lambda: list(stored_rows(mysql_url, part)))
            fetched_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
            messages = []
            for app_id, row in rows:
                if row is None:
                    logger.warning("application %s is no longer in the store: not republished", app_id)
                    continue
                messages.append(replay_message(row, fetched_at=fetched_at, run_id=run_id))
            sent += await publish(kafka, settings.topic, messages)
            logger.info("republished %d of %d applicants to %s", sent, len(ids), settings.topic)
    finally:
        await kafka.stop()
    return sent
