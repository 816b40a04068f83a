"""Stream application ids from the three places an applicant can be: the applicant store, HBase and the DLQ."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Iterator

import orjson

from applicant_api.db import connect as connect_store
from applicant_api.schema import TABLE
from hbase_helper import layout
from hbase_helper.settings import HBaseSettings
from hbase_helper.writer import COUNT_FILTER

logger = logging.getLogger(__name__)

DEFAULT_STORE_PAGE = 10_000      # ids per keyset page from MariaDB
DEFAULT_HBASE_BATCH = 5_000      # rows per scanner call (keys only)
DEFAULT_DLQ_IDLE_POLLS = 3       # empty fetches in a row that end a DLQ read
DEFAULT_DLQ_POLL_MS = 300

# Covered by the unique index on id (InnoDB secondary indexes carry the primary key, seq): no row is read.
_FIRST_PAGE_SQL = f"SELECT `id`, `seq` FROM `{TABLE}` WHERE `seq` <= %s ORDER BY `id` LIMIT %s"
_PAGE_SQL = f"SELECT `id`, `seq` FROM `{TABLE}` WHERE `id` > %s AND `seq` <= %s ORDER BY `id` LIMIT %s"


def store_max_seq(url: str) -> int:
    """The highest sequence number in the store now (0 when empty): the bound of a reconciliation."""
    conn = connect_store(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COALESCE(MAX(`seq`), 0) FROM `{TABLE}`")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def store_pages(url: str, *, max_seq: int, page_size: int = DEFAULT_STORE_PAGE) -> Iterator[list[tuple[int, int]]]:
    """Pages of (id, seq) in id order, of the applicants with seq <= ``max_seq`` (keyset paging on the id index)."""
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    conn = connect_store(url, autocommit=True)
    try:
        after = None
        while True:
            with conn.cursor() as cur:
                if after is None:
                    cur.execute(_FIRST_PAGE_SQL, (max_seq, page_size))
                else:
                    cur.execute(_PAGE_SQL, (after, max_seq, page_size))
                rows = [(int(i), int(s)) for i, s in cur.fetchall()]
            if rows:
                yield rows
            if len(rows) < page_size:
                return
            after = rows[-1][0]
    finally:
        conn.close()


def hbase_ids(settings: HBaseSettings, *, batch_size: int = DEFAULT_HBASE_BATCH) -> Iterator[int]:
    """Every application id in the main decisions table: a keys-only scan, no cell is read.

    A row key that is not an application's (none should be) is logged and skipped.
    """
    from hbase_helper.pool import connect

    with connect(settings) as conn:
        if layout.MAIN_TABLE.encode() not in conn.tables():
            return
        odd = 0
        for key, _ in conn.table(layout.MAIN_TABLE).scan(filter=COUNT_FILTER, batch_size=batch_size):
            try:
                yield layout.id_from_row_key(key)
            except ValueError:
                odd += 1
                if odd <= 5:
                    logger.warning("skipping a %s row key that names no application: %r", layout.MAIN_TABLE, key)


@dataclass
class DeadLetters:
    """What the DLQ topic holds: the application ids named by dead letters, and how many named none."""

    ids: set[int] = field(default_factory=set)
    records: int = 0
    without_id: int = 0
    topic_exists: bool = True


def dead_letter_id(value: bytes) -> int | None:
    """The application id a dead letter names (its ``id``), or None when it names none or is unreadable."""
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    app_id = record.get("id") if isinstance(record, dict) else None
    if isinstance(app_id, int) and not isinstance(app_id, bool) and app_id > 0:
        return app_id
    return None


def read_dead_letters(bootstrap: str, topic: str, *, idle_polls: int = DEFAULT_DLQ_IDLE_POLLS,
                      poll_ms: int = DEFAULT_DLQ_POLL_MS) -> DeadLetters:
    """Read the DLQ topic from the beginning until ``idle_polls`` fetches in a row return nothing.

    Not ``end_offsets``: Tansu reports a wrong high watermark. Only the id of each
    dead letter is kept, whatever the size of the record.
    """
    return asyncio.run(_read_dead_letters(bootstrap, topic, idle_polls, poll_ms))


async def _read_dead_letters(bootstrap: str, topic: str, idle_polls: int, poll_ms: int) -> DeadLetters:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    out = DeadLetters()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=50, max_partition_fetch_bytes=8 << 20, request_timeout_ms=15000)
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, topic)
        if partitions is None:
            out.topic_exists = False
            return out
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        idle = 0
        while idle < idle_polls:
            batches = await consumer.getmany(timeout_ms=poll_ms, max_records=10_000)
            idle = 0 if batches else idle + 1
            for messages in batches.values():
                for msg in messages:
                    out.records += 1
                    app_id = dead_letter_id(msg.value) if msg.value is not None else None
                    if app_id is None:
                        out.without_id += 1
                    else:
                        out.ids.add(app_id)
    finally:
        await consumer.stop()
    return out


async def topic_partitions(bootstrap: str, topic: str) -> set[int] | None:
    """The topic's partitions, or None when the broker does not have the topic (never creates it).

    Asked of an admin client: a consumer's ``partitions_for_topic`` only knows topics its own metadata
    requests named, which on Apache Kafka excludes a topic merely listed by ``topics()`` (Tansu answers
    every metadata request with every topic, which hid this)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return None
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = {p["partition"] for t in described if t["topic"] == topic for p in t["partitions"]}
    return partitions or None
