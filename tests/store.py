"""The tests' helpers for the applications table in MariaDB (the applicant API's store)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from applicant_api import db, repository
from credit_core.fields import FIELD_NAMES, clean_record
from tests.factories import clean_applicants


def stored_ids(url: str) -> list[int]:
    """The ids in the applications table, in storage (seq) order."""
    conn = db.connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM applications ORDER BY seq")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def insert_rows(conn, records: Iterable[Mapping[str, Any]], *, source: str = "test", commit: bool = True) -> None:
    """INSERT records (raw or clean: they are cleaned) with repository.INSERT_SQL on ``conn`` in a transaction
    of its own; ``commit=False`` leaves it open."""
    conn.begin()
    with conn.cursor() as cur:
        cur.executemany(repository.INSERT_SQL, [tuple(clean_record(r)[c] for c in FIELD_NAMES) + (source,)
                                                for r in records])
    if commit:
        conn.commit()


def insert_applicants(url: str, ids: range, *, source: str = "test", batch: int = 2000) -> None:
    """Store the factory's applicants with ids ``ids`` (consecutive) straight into the table."""
    conn = db.connect(url)
    try:
        for start in range(ids.start, ids.stop, batch):
            insert_rows(conn, clean_applicants(min(batch, ids.stop - start), first_id=start), source=source)
    finally:
        conn.close()
