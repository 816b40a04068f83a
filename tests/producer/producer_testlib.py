"""Helpers for the producer tests: applicant rows in MariaDB, reading a topic back with aiokafka."""

from __future__ import annotations

import asyncio
import secrets
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from applicant_api import db, repository
from deploy.ids import topic_partitions
from credit_core.fields import FIELD_NAMES

API_TOKEN = "producer-test-" + secrets.token_urlsafe(12)


def applicant_row(i: int) -> tuple:
    """One valid, already-clean row for repository.INSERT_SQL (fields in FIELD_NAMES order, then source)."""
    grade = "ABCDEFG"[i % 7]
    loan = 1000.0 + (i % 500) * 25
    rec = dict.fromkeys(FIELD_NAMES)
    rec.update(id=i, member_id=i + 5_000_000, loan_amnt=loan, funded_amnt=loan, term=36 if i % 2 else 60,
               int_rate=6.0 + i % 20, grade=grade, sub_grade=f"{grade}{i % 5 + 1}", annual_inc=50_000.0 + i,
               dti=float(i % 35), emp_length=i % 11, issue_d="2017-01", bc_open_to_buy=0.0, bc_util=0.0,
               total_il_high_credit_limit=0.0)
    return tuple(rec[c] for c in FIELD_NAMES) + ("producer-test",)


def insert_applicants(url: str, ids: range) -> None:
    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            for start in range(ids.start, ids.stop, 2000):
                cur.executemany(repository.INSERT_SQL, [applicant_row(i) for i in range(start, min(start + 2000,
                                                                                                  ids.stop))])
        conn.commit()
    finally:
        conn.close()


def table_ids(url: str) -> list[int]:
    conn = db.connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM applications ORDER BY seq")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


async def _consume(bootstrap: str, topic: str, expected: int, timeout: float, idle: float) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = await topic_partitions(bootstrap, topic)   # the topic may be brand new
            if not partitions:
                await asyncio.sleep(0.2)
        assert partitions, f"topic {topic} does not exist"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        messages, last_new = [], time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            got = [m for msgs in batch.values() for m in msgs]
            if got:
                messages.extend(got)
                last_new = time.monotonic()
            elif len(messages) >= expected and time.monotonic() - last_new >= idle:
                break
        return messages
    finally:
        await consumer.stop()


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60.0, idle: float = 1.0) -> list:
    """Every message of ``topic`` (all partitions from the start) once at least ``expected`` arrived and
    nothing new came for ``idle`` seconds (or ``timeout`` passed)."""
    return asyncio.run(_consume(bootstrap, topic, expected, timeout, idle))


def ids_of(messages) -> list[int]:
    return [orjson.loads(m.value)["applicant"]["id"] for m in messages]


