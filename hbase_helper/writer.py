"""Batched, idempotent writes of decisions to HBase (history cells plus time-index rows), and read-backs."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Iterable, Mapping

import happybase

from credit_core.clock import now_ms
from credit_core.messages.decision import validate_decision
from hbase_helper import layout
from hbase_helper.metrics import HBaseWriterMetrics, writer_metrics
from hbase_helper.pool import get_pool
from hbase_helper.settings import HBaseSettings

logger = logging.getLogger(__name__)

# happybase's batch_size counts cells; a decision is 1 history cell + 1 index cell, so the
# default sends one mutateRows per table for calls of up to 50,000 decisions.
DEFAULT_BATCH_CELLS = 50_000
COUNT_FILTER = "FirstKeyOnlyFilter() AND KeyOnlyFilter()"


def encode_decisions(decisions: Iterable[Mapping[str, Any]], saved_at: int
                     ) -> tuple[list[tuple[bytes, dict]], list[tuple[bytes, dict]]]:
    """Validate every decision, then encode (main rows, index rows), one entry per row key.

    Decisions of one application from different raw records become several
    history cells of its row; the same raw record twice in one call keeps its
    last decision (as two calls would). Raises DecisionError (a ValueError)
    before anything is written when one decision breaks the contract.
    """
    checked = [(validate_decision(d), d) for d in decisions]
    main: dict[bytes, dict[bytes, bytes]] = {}
    index: dict[bytes, dict[bytes, bytes]] = {}
    for _, d in checked:
        (mkey, mcells), (ikey, icells) = layout.encode_rows(d, saved_at)
        row = main.get(mkey)
        if row is None:
            main[mkey] = mcells
        else:
            row.update(mcells)
        index[ikey] = icells
    return list(main.items()), list(index.items())


def write_rows(connection: happybase.Connection, main_rows, index_rows, *,
               batch_cells: int = DEFAULT_BATCH_CELLS) -> None:
    """Send main rows, then index rows (a reader never finds an index row before its main row).

    The same Thrift calls happybase's ``table.batch(batch_size=batch_cells)``
    makes (``mutateRows`` of puts with the WAL on, server-assigned timestamps,
    a call per ``batch_cells`` cells), built directly: the Batch object's
    per-cell bookkeeping cost as much as the encoding.
    """
    from hbase_helper.thrift_types import BatchMutation, Mutation

    client = connection.client
    for table_name, rows in ((layout.MAIN_TABLE, main_rows), (layout.INDEX_TABLE, index_rows)):
        if not rows:
            continue
        name = connection.table(table_name).name
        chunk: list = []
        cells = 0
        for key, data in rows:
            chunk.append(BatchMutation(key, [Mutation(False, column, value, True) for column, value in data.items()]))
            cells += len(data)
            if cells >= batch_cells:
                client.mutateRows(name, chunk, {})
                chunk, cells = [], 0
        if chunk:
            client.mutateRows(name, chunk, {})


def _with_connection(connection, overrides: dict, fn):
    if connection is not None:
        if overrides:
            raise TypeError("pass a connection or HBase settings, not both")
        return fn(connection)
    from hbase_helper.pool import connect

    with connect(HBaseSettings.from_env(**overrides)) as conn:
        return fn(conn)


def count_rows(connection: happybase.Connection | None = None, table: str = layout.MAIN_TABLE, *,
               batch_size: int = 5000, **settings: Any) -> int:
    """Rows in a table: a full scan returning keys only (FirstKeyOnlyFilter + KeyOnlyFilter).

    Uses ``connection``, or opens one from the environment with HBaseSettings
    overrides (``count_rows(host=..., port=...)``).
    """
    if table not in layout.FAMILIES:
        raise ValueError(f"table must be one of {', '.join(layout.FAMILIES)}, got {table!r}")

    def count(conn) -> int:
        return sum(1 for _ in conn.table(table).scan(filter=COUNT_FILTER, batch_size=batch_size))

    return _with_connection(connection, settings, count)


def read_decision(connection: happybase.Connection | None, app_id: int, **settings: Any) -> dict[str, Any] | None:
    """One application's current decision with its ``history`` (one get), or None.

    ``connection`` None opens one as count_rows does.
    """
    key = layout.row_key(app_id)

    def get(conn):
        cells = conn.table(layout.MAIN_TABLE).row(key)
        return layout.decode_main_row(key, cells) if cells else None

    return _with_connection(connection, settings, get)


class DecisionWriter:
    """Writes decisions to HBase; blocking, thread-safe, meant for ``loop.run_in_executor``.

    ``write`` raises on any failure and never swallows one: DecisionError (a
    ValueError) when a decision breaks the contract (nothing is written; a
    retry cannot help), anything else (thriftpy2 TTransportException,
    socket errors, Hbase IOError) when HBase failed (retry: writes are
    idempotent). The pool is created on the first call, so a writer can be
    built while HBase is still down.

    Each write is counted in ``metrics`` (rows per table, duration): the
    process's ``hbase_helper.metrics.writer_metrics()`` when True (the
    default), nowhere when False, or in the HBaseWriterMetrics given.
    """

    def __init__(self, settings: HBaseSettings | None = None, *, pool: happybase.ConnectionPool | None = None,
                 batch_cells: int = DEFAULT_BATCH_CELLS, metrics: HBaseWriterMetrics | bool = True):
        if settings is not None and not isinstance(settings, HBaseSettings):
            raise TypeError(f"settings must be HBaseSettings, got {type(settings).__name__}")
        if isinstance(batch_cells, bool) or not isinstance(batch_cells, int) or batch_cells < 1:
            raise ValueError(f"batch_cells must be a positive int, got {batch_cells!r}")
        self.settings = settings or HBaseSettings.from_env()
        self.batch_cells = batch_cells
        self._pool = pool
        self._lock = threading.Lock()
        self.rows_written = 0   # decisions (history cells) sent, replays included
        self.calls = 0
        if isinstance(metrics, bool):
            metrics = writer_metrics() if metrics else None
        self.metrics: HBaseWriterMetrics | None = metrics

    @property
    def pool(self) -> happybase.ConnectionPool:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = get_pool(self.settings)
        return self._pool

    def write(self, decisions: list[dict]) -> None:
        """Write the history cells and index rows of ``decisions`` (adds ``saved_at``); raise on failure."""
        if not isinstance(decisions, (list, tuple)):
            raise TypeError(f"decisions must be a list of dicts, got {type(decisions).__name__}")
        if not decisions:
            return
        main, index = encode_decisions(decisions, now_ms())
        started = time.perf_counter()
        with self.pool.connection() as conn:
            write_rows(conn, main, index, batch_cells=self.batch_cells)
        seconds = time.perf_counter() - started
        with self._lock:
            self.rows_written += sum(len(cells) for _, cells in main)
            self.calls += 1
        if self.metrics is not None:
            self.metrics.written({layout.MAIN_TABLE: len(main), layout.INDEX_TABLE: len(index)}, seconds)
        logger.debug("wrote %d row(s) in %.1f ms", len(main), seconds * 1000)

    def count_retry(self) -> None:
        """Count a failed ``write`` that its caller retries (credit_hbase_write_retries_total)."""
        if self.metrics is not None:
            self.metrics.retried()

    async def write_async(self, decisions: list[dict], executor=None) -> None:
        """``write`` in ``executor`` (the loop's default when None), awaited without blocking the loop."""
        await asyncio.get_running_loop().run_in_executor(executor, self.write, decisions)

    def read_decision(self, app_id: int) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            return read_decision(conn, app_id)

    def count_rows(self, table: str = layout.MAIN_TABLE) -> int:
        with self.pool.connection() as conn:
            return count_rows(conn, table)
