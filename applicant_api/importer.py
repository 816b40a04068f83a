"""Import LendingClub LoanStats files into the applications table: batched, idempotent, every bad row reported.

Reading and cleaning (credit_core.lendingclub) run in the calling thread;
the values are bound by pymysql (cursor.mogrify, the routine executemany
uses) and sent as multi-row INSERTs, one transaction per batch, by a writer
thread, so parsing and the database work overlap. On large files binding and
sending move to a writer process with its own connection, so they also run on
another core than reading and cleaning. A row whose id is already in the table is counted as
a duplicate, never written twice (``ON DUPLICATE KEY UPDATE id = id`` on the
unique id). A malformed or invalid row is reported with its line number and
reason and never stops the import.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import orjson
import pymysql

from applicant_api import db, schema
from credit_core.fields import FIELD_NAMES, RecordError
from credit_core.lendingclub import (BLANK, MALFORMED, NOTICE, SUMMARY, TRUE_PD_COLUMN, LoanStatsReader,
                                       RecordCleaner, Row, row_error)

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = int(os.environ.get("IMPORT_BATCH_SIZE", "2000"))     # IMPORT_BATCH_SIZE
DEFAULT_SOURCE = os.environ.get("IMPORT_SOURCE", "lendingclub")            # IMPORT_SOURCE
# Rejected rows kept in the report object (all of them go to the rejects file).
DEFAULT_MAX_REJECTS_KEPT = 1000
MAX_BATCH_SIZE = 50_000
MAX_SOURCE_LENGTH = 64
# Rows per statement are capped by size too (MySQL's max_allowed_packet is 4-64 MB by default).
MAX_STATEMENT_CHARS = 1_000_000
# Files at least this big get a writer process (IMPORT_WRITER_PROCESS_MIN_BYTES).
WRITER_PROCESS_MIN_BYTES = int(os.environ.get("IMPORT_WRITER_PROCESS_MIN_BYTES", str(8 << 20)))
# Batches parsed ahead of the writer (bounded: constant memory on any file size).
_QUEUE_DEPTH = 2

COLUMNS: tuple[str, ...] = FIELD_NAMES + (TRUE_PD_COLUMN, "source")
_INSERT_PREFIX = f"INSERT INTO `{schema.TABLE}` ({', '.join(f'`{c}`' for c in COLUMNS)}) VALUES "
_VALUES = f"({', '.join(['%s'] * len(COLUMNS))})"
# An id already in the table leaves its row alone and counts 0 affected rows: a duplicate.
_INSERT_SUFFIX = " ON DUPLICATE KEY UPDATE `id` = `id`"
INSERT_SQL = _INSERT_PREFIX + _VALUES + _INSERT_SUFFIX

# Errors a statement can raise; only those about a row's data (_is_row_error) reject rows, the rest stop the import.
_ROW_ERRORS = (pymysql.err.DataError, pymysql.err.IntegrityError, pymysql.err.ProgrammingError,
               pymysql.err.InternalError, pymysql.err.OperationalError)
# Server codes about one row's values: null in NOT NULL, out of range, truncation, bad value, CHECK constraints.
_ROW_ERRNOS = frozenset({1048, 1062, 1264, 1265, 1292, 1366, 1406, 1452, 1690, 3819, 4025})


@dataclass(frozen=True)
class Reject:
    """A data row that was not imported: where, which id (as written, if any) and why."""

    line_no: int
    id: str | None
    errors: list[dict[str, str]]

    @property
    def reason(self) -> str:
        return "; ".join(f"{e['field']}: {e['reason']}" for e in self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line_no, "id": self.id, "reason": self.reason, "errors": self.errors}


@dataclass
class ImportReport:
    """What an import did. ``rows`` = imported + duplicates + rejected."""

    path: str
    source: str
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    ignored_lines: dict[str, int] = field(default_factory=lambda: {NOTICE: 0, BLANK: 0, SUMMARY: 0})
    rejects: list[Reject] = field(default_factory=list)   # the first max_rejects_kept
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly totals (no per-row details)."""
        return {
            "file": self.path, "source": self.source, "rows": self.rows, "imported": self.imported,
            "duplicates": self.duplicates, "rejected": self.rejected, "ignored_lines": dict(self.ignored_lines),
            "seconds": round(self.seconds, 3), "rows_per_s": round(self.rows_per_s, 1),
        }


def _is_row_error(exc: BaseException) -> bool:
    """True when the server refused a row's values (retry row by row, reject those); else the import stops."""
    if isinstance(exc, (pymysql.err.DataError, pymysql.err.IntegrityError)):
        return True
    errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    return errno in _ROW_ERRNOS


class _Writer(threading.Thread):
    """Sends queued batches, one transaction each; falls back to row by row if the server refuses a batch.

    A batch is a list of (line_no, id, row) where row is the ``(...)`` VALUES
    tuple already bound by pymysql (cursor.mogrify, the routine executemany
    uses), so this thread only does I/O and the parsing thread keeps the GIL.
    """

    def __init__(self, conn, batches: "queue.Queue[list[tuple[int, Any, str]] | None]",
                 on_reject: Callable[[Reject], None]):
        super().__init__(name="importer-writer", daemon=True)
        self.conn = conn
        self.batches = batches
        self.on_reject = on_reject
        self.inserted = 0
        self.duplicates = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (batch := self.batches.get()) is not None:
                self._write(batch)
        except BaseException as exc:  # handed to the importing thread, which raises it
            self.error = exc
            while self.batches.get() is not None:  # keep the producer from blocking on a full queue
                pass

    def _write(self, batch: list[tuple[int, Any, str]]) -> None:
        refused = 0
        with self.conn.cursor() as cur:
            try:
                inserted = 0
                for statement in _statements([row for _, _, row in batch]):
                    inserted += cur.execute(statement) or 0
                self.conn.commit()
            except _ROW_ERRORS as exc:
                if not _is_row_error(exc):
                    raise
                # Values passed validation, so this is rare (e.g. a server-side constraint): isolate the rows.
                self.conn.rollback()
                logger.warning("batch of %d rows refused (%s); inserting row by row", len(batch), exc)
                inserted, refused = self._write_rows(cur, batch)
        self.inserted += inserted
        self.duplicates += len(batch) - inserted - refused

    def _write_rows(self, cur, batch: list[tuple[int, Any, str]]) -> tuple[int, int]:
        inserted = refused = 0
        for line_no, row_id, row in batch:
            try:
                inserted += cur.execute(_INSERT_PREFIX + row + _INSERT_SUFFIX) or 0
                self.conn.commit()
            except _ROW_ERRORS as exc:
                if not _is_row_error(exc):
                    raise
                self.conn.rollback()
                refused += 1
                self.on_reject(Reject(line_no, str(row_id), [{"field": "$db", "reason": str(exc)}]))
        return inserted, refused


def _statements(rows: list[str]) -> Iterator[str]:
    """Multi-row INSERT statements of at most MAX_STATEMENT_CHARS (well under any max_allowed_packet)."""
    start, size = 0, 0
    for i, row in enumerate(rows):
        if size and size + len(row) > MAX_STATEMENT_CHARS:
            yield _INSERT_PREFIX + ",".join(rows[start:i]) + _INSERT_SUFFIX
            start, size = i, 0
        size += len(row) + 1
    if start < len(rows):
        yield _INSERT_PREFIX + ",".join(rows[start:]) + _INSERT_SUFFIX


def import_file(path: str | os.PathLike, url: str | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE,
                source: str = DEFAULT_SOURCE, rejects_file: str | os.PathLike | None = None,
                max_rejects_kept: int = DEFAULT_MAX_REJECTS_KEPT, progress: bool = False,
                create_schema: bool = True, writer_process: bool | None = None) -> ImportReport:
    """Import one LoanStats file (plain, .gz or .zip) into ``url`` (default: MYSQL_URL); return the report.

    Every rejected row goes to ``rejects_file`` (JSON lines) if given; the first
    ``max_rejects_kept`` are also in ``report.rejects``. ``progress`` shows a
    tqdm bar on stderr. The schema is created first unless ``create_schema`` is False.
    ``writer_process`` runs binding and inserts in a second process (default: for
    files of at least WRITER_PROCESS_MIN_BYTES, where it pays for its ~0.2 s start).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or PathLike, got {type(path).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be an int in 1..{MAX_BATCH_SIZE}, got {batch_size!r}")
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE_LENGTH:
        raise ValueError(f"source must be a non-empty string of at most {MAX_SOURCE_LENGTH} characters,"
                         f" got {source!r}")
    if isinstance(max_rejects_kept, bool) or not isinstance(max_rejects_kept, int) or max_rejects_kept < 0:
        raise ValueError(f"max_rejects_kept must be an int >= 0, got {max_rejects_kept!r}")
    path = Path(path)
    source = source.strip()
    url = url or db.mysql_url()
    report = ImportReport(path=str(path), source=source)
    started = time.perf_counter()
    lock = threading.Lock()
    rejects_out: BinaryIO | None = None

    def reject(item: Reject) -> None:
        with lock:  # the writer thread reports the rare rows the server refuses
            report.rejected += 1
            if len(report.rejects) < max_rejects_kept:
                report.rejects.append(item)
            if rejects_out is not None:
                rejects_out.write(orjson.dumps(item.as_dict()) + b"\n")

    with LoanStatsReader(path) as reader:
        conn = db.connect(url)
        try:
            if create_schema:
                schema.init_db(conn)
            if rejects_file is not None:
                rejects_out = open(rejects_file, "wb")
            if writer_process is None:
                writer_process = reader.size >= WRITER_PROCESS_MIN_BYTES
            _run(reader, conn, url, report, reject, batch_size, source, progress, writer_process)
        finally:
            conn.close()
            if rejects_out is not None:
                rejects_out.close()
    report.seconds = time.perf_counter() - started
    logger.info("imported %s: %s", path, report.summary())
    return report


class _ThreadSink:
    """Binds rows in the calling thread and hands them to a _Writer thread on ``conn``."""

    def __init__(self, conn, on_reject: Callable[[Reject], None]):
        self._bind = functools.partial(conn.cursor().mogrify, _VALUES)
        self._batches: queue.Queue = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._writer = _Writer(conn, self._batches, on_reject)
        self._writer.start()

    def send(self, batch: list[tuple[int, list]]) -> None:
        bind = self._bind
        bound = [(line_no, params[0], bind(params)) for line_no, params in batch]
        while True:
            if self._writer.error is not None:
                raise self._writer.error
            try:
                self._batches.put(bound, timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self) -> tuple[int, int]:
        """Wait for every batch to be written; return (inserted, duplicates)."""
        self._batches.put(None)
        self._writer.join()
        if self._writer.error is not None:
            raise self._writer.error
        return self._writer.inserted, self._writer.duplicates

    def abort(self) -> None:
        """Stop after the queued batches (they are committed: imports are idempotent)."""
        while self._writer.is_alive():
            try:
                self._batches.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        self._writer.join(timeout=60)


class _ProcessSink:
    """Sends batches to a writer process (own connection, binding and _Writer thread) over a pipe.

    Reading and cleaning keep this process's GIL while binding runs on another
    core. Batches travel as length-prefixed orjson frames (cleaned values are
    JSON values; nothing is pickled). The child gets MYSQL_URL through its
    environment, never its command line, and answers one JSON line at the end.
    """

    def __init__(self, url: str, on_reject: Callable[[Reject], None]):
        self._on_reject = on_reject
        env = dict(os.environ, MYSQL_URL=url)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from applicant_api.importer import writer_main; writer_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def send(self, batch: list[tuple[int, list]]) -> None:
        frame = orjson.dumps(batch)
        try:
            self._proc.stdin.write(len(frame).to_bytes(4, "big") + frame)
        except (BrokenPipeError, ValueError):
            self._raise_child_error()

    def finish(self) -> tuple[int, int]:
        try:
            self._proc.stdin.write(_END_FRAME)
            self._proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        answer = self._answer()
        if "error" in answer:
            raise _child_error(answer["error"])
        for item in answer["rejects"]:
            self._on_reject(Reject(item["line"], item["id"], item["errors"]))
        return answer["inserted"], answer["duplicates"]

    def _answer(self) -> dict:
        out = self._proc.stdout.read()
        code = self._proc.wait()
        try:
            return orjson.loads(out.splitlines()[-1])
        except (IndexError, orjson.JSONDecodeError):
            raise RuntimeError(f"the importer's writer process died (exit code {code})") from None

    def _raise_child_error(self) -> None:
        answer = self._answer()
        raise _child_error(answer.get("error") or {"type": "RuntimeError", "args": ["writer process stopped"]})

    def abort(self) -> None:
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


_END_FRAME = (0).to_bytes(4, "big")


def _child_error(error: dict) -> BaseException:
    """The writer process's error as an exception here (pymysql errors keep their class and errno)."""
    cls = getattr(pymysql.err, str(error.get("type")), None)
    args = error.get("args") or []
    if isinstance(cls, type) and issubclass(cls, pymysql.err.MySQLError):
        return cls(*args)
    return RuntimeError(f"importer writer process: {error.get('type')}: {' '.join(map(str, args))}")


def writer_main() -> None:
    """Entry point of the writer process: frames of [[line_no, params], ...] on stdin, one JSON answer on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    rejects: list[Reject] = []
    try:
        conn = db.connect(os.environ.get("MYSQL_URL"))
        try:
            sink = _ThreadSink(conn, rejects.append)
            try:
                while (size := int.from_bytes(_read_exactly(stdin, 4), "big")):
                    sink.send(orjson.loads(_read_exactly(stdin, size)))
                inserted, duplicates = sink.finish()
            except BaseException:
                sink.abort()
                raise
        finally:
            conn.close()
    except BaseException as exc:  # reported to the importing process, which raises it
        args = [a if isinstance(a, (int, str)) else str(a) for a in exc.args] or [str(exc)]
        stdout.write(orjson.dumps({"error": {"type": type(exc).__name__, "args": args}}) + b"\n")
        stdout.flush()
        sys.exit(1)
    stdout.write(orjson.dumps({"inserted": inserted, "duplicates": duplicates,
                               "rejects": [r.as_dict() for r in rejects]}) + b"\n")
    stdout.flush()


def _read_exactly(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"importer writer: input ended inside a frame ({len(data)} of {size} bytes)")
    return data


def _run(reader: LoanStatsReader, conn, url: str | None, report: ImportReport, reject: Callable[[Reject], None],
         batch_size: int, source: str, progress: bool, writer_process: bool) -> None:
    cleaner = RecordCleaner()
    # A cleaned record's values come in cleaner.fields order, which must be the INSERT's column order.
    if tuple(f.name for f in cleaner.fields) + ("source",) != COLUMNS:
        raise AssertionError("RecordCleaner fields and importer COLUMNS disagree")
    pick = cleaner.getter(reader.header)
    clean = cleaner.clean_values
    sink = _ProcessSink(url, reject) if writer_process else _ThreadSink(conn, reject)
    bar = _progress_bar(reader, progress)
    ignored = report.ignored_lines
    batch: list[tuple[int, list]] = []
    last_pos = 0
    try:
        for item in reader:
            if type(item) is Row:
                report.rows += 1
                try:
                    rec = clean(pick(item.values))
                except RecordError as exc:
                    reject(Reject(item.line_no, item.raw.get("id"), exc.as_list()))
                    continue
                params = list(rec.values())
                params.append(source)
                batch.append((item.line_no, params))
                if len(batch) >= batch_size:
                    sink.send(batch)
                    batch = []
                    if bar is not None:
                        pos = reader.position
                        bar.update(pos - last_pos)
                        last_pos = pos
                        bar.set_postfix(rows=report.rows, rejected=report.rejected, refresh=False)
            elif item.kind == MALFORMED:
                report.rows += 1
                reject(Reject(item.line_no, None, row_error(item).as_list()))
            else:
                ignored[item.kind] = ignored.get(item.kind, 0) + 1
        if batch:
            sink.send(batch)
        report.imported, report.duplicates = sink.finish()
    except BaseException:
        sink.abort()
        raise
    finally:
        if bar is not None:
            bar.set_postfix(rows=report.rows, rejected=report.rejected, refresh=False)
            bar.update(max(reader.size - last_pos, 0))
            bar.close()


def _progress_bar(reader: LoanStatsReader, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=reader.size, unit="B", unit_scale=True, unit_divisor=1024,
                desc=f"import {reader.path.name}", leave=True, dynamic_ncols=True)
