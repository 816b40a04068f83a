"""SQL for the applicant API: keyset pages, one applicant, transactional inserts (parameterised only).

Rows leave MariaDB already serialised: each row is one ``JSON_OBJECT(...)``
built by the server (C code), which is about twice as fast as decoding the
34 columns with pymysql and re-encoding them in Python, and round-trips every
double exactly. ``created_at`` is rendered as ISO 8601 UTC (the pool sets the
session time zone to +00:00).

Keyset pages use a locking read (``LOCK IN SHARE MODE`` under READ COMMITTED):
a row inserted by a transaction that has not committed yet makes the read wait
for that commit instead of being passed over, so a reader never moves its
cursor beyond a sequence number that is about to appear. (A new row is put in
the index microseconds after its sequence number is allocated; only a row
still inside that window can be missed.)
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable, Sequence

import pymysql

from credit_core.fields import FIELD_NAMES
from applicant_api.schema import TABLE

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 1062

# The public representation of an applicant: the record fields plus seq, source and created_at.
PUBLIC_COLUMNS: tuple[str, ...] = ("seq",) + FIELD_NAMES + ("source", "created_at")

_JSON_PAIRS = ", ".join(f"'{c}', `{c}`" for c in ("seq",) + FIELD_NAMES + ("source",))
# %% because pymysql applies %-formatting to parameterised statements.
_ROW_JSON = (f"JSON_OBJECT({_JSON_PAIRS}, "
             "'created_at', DATE_FORMAT(`created_at`, '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'))")

PAGE_SQL = (f"SELECT `seq`, {_ROW_JSON} FROM `{TABLE}` WHERE `seq` > %s "
            "ORDER BY `seq` LIMIT %s LOCK IN SHARE MODE")
ONE_SQL = f"SELECT {_ROW_JSON} FROM `{TABLE}` WHERE `id` = %s"
_INSERT_COLUMNS = FIELD_NAMES + ("source",)
INSERT_SQL = (f"INSERT INTO `{TABLE}` ({', '.join(f'`{c}`' for c in _INSERT_COLUMNS)}) "
              f"VALUES ({', '.join(['%s'] * len(_INSERT_COLUMNS))})")
# The reference page read for the benchmark: the same rows as plain tuples, no JSON.
PAGE_TUPLES_SQL = (f"SELECT {', '.join(f'`{c}`' for c in PUBLIC_COLUMNS)} FROM `{TABLE}` "
                   "WHERE `seq` > %s ORDER BY `seq` LIMIT %s")


class RejectedValue(ValueError):
    """MariaDB refused a value (out of range for its column); nothing was written."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_COLUMN_IN_MESSAGE = re.compile(r"column '([^']+)'")


class DuplicateIds(Exception):
    """Some ids of an insert already exist; nothing was written."""

    def __init__(self, ids: Sequence[int]):
        super().__init__(f"ids already exist: {', '.join(map(str, ids))}")
        self.ids = list(ids)


def page(conn, after: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` rows with seq > ``after`` in seq order, as (seq, applicant JSON text)."""
    with conn.cursor() as cur:
        cur.execute(PAGE_SQL, (after, limit))
        return cur.fetchall()


def one(conn, applicant_id: int) -> str | None:
    """The applicant's JSON text, or None."""
    with conn.cursor() as cur:
        cur.execute(ONE_SQL, (applicant_id,))
        row = cur.fetchone()
    return row[0] if row else None


def existing_ids(conn, ids: Iterable[int]) -> list[int]:
    ids = list(ids)
    if not ids:
        return []
    with conn.cursor() as cur:
        cur.execute(f"SELECT `id` FROM `{TABLE}` WHERE `id` IN ({', '.join(['%s'] * len(ids))}) ORDER BY `id`",
                    ids)
        return [r[0] for r in cur.fetchall()]


def insert(conn, records: Sequence[dict[str, Any]], sources: Sequence[str]) -> list[tuple[int, int]]:
    """Insert cleaned records (each with its source tag) in one transaction; return [(id, seq)] in input order.

    Raise DuplicateIds (after rolling back) when any id exists already.
    """
    if len(sources) != len(records):
        raise ValueError(f"{len(records)} records but {len(sources)} sources")
    rows = [tuple(rec[c] for c in FIELD_NAMES) + (src,) for rec, src in zip(records, sources)]
    ids = [rec["id"] for rec in records]
    conn.begin()
    try:
        with conn.cursor() as cur:
            cur.executemany(INSERT_SQL, rows)
            cur.execute(f"SELECT `id`, `seq` FROM `{TABLE}` WHERE `id` IN ({', '.join(['%s'] * len(ids))})", ids)
            seq_by_id = dict(cur.fetchall())
        conn.commit()
    except pymysql.err.IntegrityError as exc:
        conn.rollback()
        if exc.args and exc.args[0] == DUPLICATE_KEY:
            raise DuplicateIds(existing_ids(conn, ids)) from None
        raise
    except pymysql.err.DataError as exc:
        conn.rollback()
        message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        match = _COLUMN_IN_MESSAGE.search(message)
        raise RejectedValue(match.group(1) if match else "$", message) from None
    except BaseException:
        conn.rollback()
        raise
    return [(i, seq_by_id[i]) for i in ids]


def ping(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
