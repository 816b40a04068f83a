"""SQLite storage of the embedded HBase server: tables, column families, up to max_versions versions per cell and delete markers, bytewise ordered."""

from __future__ import annotations

import functools
import itertools
import logging
import operator
import os
import sqlite3
import struct
import threading
import time
from dataclasses import dataclass, field

from credit_core.clock import now_ms

logger = logging.getLogger(__name__)

DEFAULT_CACHE_KB = 65_536           # HBASE_SERVER_CACHE_KB (SQLite page cache per server)
DEFAULT_WAL_AUTOCHECKPOINT = 10_000 # HBASE_SERVER_WAL_AUTOCHECKPOINT (WAL pages between checkpoints)
MAX_ROW_LENGTH = 32_767             # HBase's limit (Short.MAX_VALUE)
FOREVER_TTL = 2_147_483_647         # HColumnDescriptor.DEFAULT_TTL (HConstants.FOREVER)
COMPRESSIONS = ("NONE", "GZ", "LZO", "SNAPPY", "LZ4", "BZIP2", "ZSTD")
BLOOM_TYPES = ("NONE", "ROW", "ROWCOL", "ROWPREFIX_FIXED_LENGTH")
TABLE_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")

_pack_i64 = struct.Struct(">q").pack
_unpack_i64 = struct.Struct(">q").unpack

SCHEMA = """
CREATE TABLE IF NOT EXISTS hb_tables (
    id INTEGER PRIMARY KEY,
    name BLOB NOT NULL UNIQUE,
    enabled INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hb_families (
    tbl INTEGER NOT NULL REFERENCES hb_tables(id),
    name BLOB NOT NULL,
    rank INTEGER NOT NULL,
    max_versions INTEGER NOT NULL,
    compression TEXT NOT NULL,
    in_memory INTEGER NOT NULL,
    bloom_filter_type TEXT NOT NULL,
    bloom_filter_vector_size INTEGER NOT NULL,
    bloom_filter_nb_hashes INTEGER NOT NULL,
    block_cache_enabled INTEGER NOT NULL,
    time_to_live INTEGER NOT NULL,
    PRIMARY KEY (tbl, name)
) WITHOUT ROWID;
"""

# One SQLite table per HBase table; its name is built from the integer id only. Cells live in a rowid
# table (appended in write order) under a unique index: row keys that are spread on purpose (hash
# prefixes) then land in the small index entries only, not in B-tree pages holding the values, which made
# random-key puts ~2x cheaper than a WITHOUT ROWID table keyed by the cell. A table whose families all
# keep one version has the unique index (row, fam, col), and a put replaces an older version in place.
# Otherwise the index is (row, fam, col, ts DESC) and an AFTER INSERT trigger keeps each family's
# max_versions newest versions (in SQLite's VM; it costs ~35% more store CPU per put, so single-version
# tables, the application's, go without it). {t}_del holds delete markers, one per cell or family (col
# b""), with the newest delete's timestamp: a later put at or below it stays hidden, as in HBase before a
# major compaction.
CELLS_DDL = """
CREATE TABLE {t} (
    row BLOB NOT NULL,
    fam INTEGER NOT NULL,
    col BLOB NOT NULL,
    ts INTEGER NOT NULL,
    value BLOB NOT NULL
)
"""
MARKERS_DDL = ("CREATE TABLE IF NOT EXISTS {t}_del (row BLOB NOT NULL, fam INTEGER NOT NULL, col BLOB NOT NULL,"
               " ts INTEGER NOT NULL, PRIMARY KEY (row, fam, col)) WITHOUT ROWID")
SINGLE_VERSION_INDEX = "CREATE UNIQUE INDEX {t}_cell ON {t}(row, fam, col)"
MULTI_VERSION_INDEX = "CREATE UNIQUE INDEX {t}_cell ON {t}(row, fam, col, ts DESC)"
VERSIONS_TRIGGER = """
CREATE TRIGGER {t}_versions AFTER INSERT ON {t} BEGIN
    DELETE FROM {t} WHERE row = NEW.row AND fam = NEW.fam AND col = NEW.col AND ts < (
        SELECT ts FROM {t} WHERE row = NEW.row AND fam = NEW.fam AND col = NEW.col
        ORDER BY ts DESC LIMIT 1 OFFSET (CASE NEW.fam {cases} ELSE 0 END));
END
"""
FAMILY_MARKER = b""   # the col of a delete marker that covers a whole family


class StoreError(Exception):
    """A request the store refuses; ``kind`` names the IDL exception (io, illegal, exists)."""

    def __init__(self, message: str, kind: str = "io"):
        super().__init__(message)
        self.kind = kind


@dataclass
class Family:
    name: bytes
    rank: int
    max_versions: int = 3
    compression: str = "NONE"
    in_memory: bool = False
    bloom_filter_type: str = "NONE"
    bloom_filter_vector_size: int = 0
    bloom_filter_nb_hashes: int = 0
    block_cache_enabled: bool = False
    time_to_live: int = -1


@dataclass
class TableMeta:
    id: int
    name: bytes
    enabled: bool
    created_ms: int
    families: dict[bytes, Family] = field(default_factory=dict)
    has_markers: bool = False   # any delete marker: only then do puts look for markers

    @property
    def sql(self) -> str:
        return f"c_{int(self.id)}"

    @property
    def multi_version(self) -> bool:
        """Whether a cell may hold more than one version (else reads need no newest-version pass)."""
        return any(f.max_versions > 1 for f in self.families.values())


    def rank(self, family: bytes) -> int:
        fam = self.families.get(family)
        if fam is None:
            raise StoreError(
                f"NoSuchColumnFamilyException: column family {family!r} does not exist in table "
                f"{self.name.decode(errors='replace')} (families: "
                f"{', '.join(sorted(f.decode(errors='replace') for f in self.families))})")
        return fam.rank


@dataclass
class Selection:
    """Which cells a read returns: whole families (by rank) and single columns; empty = all."""

    families: frozenset = frozenset()
    columns: frozenset = frozenset()

    @property
    def everything(self) -> bool:
        return not self.families and not self.columns

    def wants(self, fam: int, col: bytes) -> bool:
        return fam in self.families or col in self.columns


def split_column(column: bytes) -> tuple[bytes, bytes | None]:
    """``b"cf:q"`` -> (b"cf", b"q"); ``b"cf:"`` -> (b"cf", b""); ``b"cf"`` -> (b"cf", None) as HBase parses it."""
    fam, sep, qual = column.partition(b":")
    return fam, (qual if sep else None)


class Store:
    """HBase tables in one SQLite database; every public method is thread safe (one connection, one lock)."""

    def __init__(self, path: str, *, cache_kb: int | None = None, wal_autocheckpoint: int | None = None):
        if not isinstance(path, str) or not path:
            raise ValueError("db path must be a non-empty string (a file path or ':memory:')")
        self.path = path
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise ValueError(f"folder of the database does not exist: {parent}")
        cache_kb = int(os.environ.get("HBASE_SERVER_CACHE_KB", DEFAULT_CACHE_KB)) if cache_kb is None else cache_kb
        if wal_autocheckpoint is None:
            wal_autocheckpoint = int(os.environ.get("HBASE_SERVER_WAL_AUTOCHECKPOINT", DEFAULT_WAL_AUTOCHECKPOINT))
        if cache_kb < 1 or wal_autocheckpoint < 1:
            raise ValueError("cache_kb and wal_autocheckpoint must be >= 1")
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if path != ":memory:":
            mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"SQLite refused WAL mode for {path} (got {mode})")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # Fewer, larger checkpoints: each one fsyncs, and random row keys dirty pages all over the tree.
        self.db.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
        self.db.execute(f"PRAGMA cache_size=-{int(cache_kb)}")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.executescript(SCHEMA)
        self.tables: dict[bytes, TableMeta] = {}
        self._load()

    def close(self) -> None:
        with self.lock:
            if self.db is not None:
                try:
                    self.db.execute("PRAGMA optimize")
                finally:
                    self.db.close()
                    self.db = None

    def _load(self) -> None:
        for tid, name, enabled, created in self.db.execute(
                "SELECT id, name, enabled, created_ms FROM hb_tables"):
            self.tables[bytes(name)] = TableMeta(tid, bytes(name), bool(enabled), created)
        by_id = {t.id: t for t in self.tables.values()}
        for row in self.db.execute(
                "SELECT tbl, name, rank, max_versions, compression, in_memory, bloom_filter_type,"
                " bloom_filter_vector_size, bloom_filter_nb_hashes, block_cache_enabled, time_to_live"
                " FROM hb_families"):
            fam = Family(bytes(row[1]), *row[2:])
            fam.in_memory, fam.block_cache_enabled = bool(fam.in_memory), bool(fam.block_cache_enabled)
            by_id[row[0]].families[fam.name] = fam
        for meta in self.tables.values():
            self._upgrade(meta)
            meta.has_markers = self.db.execute(f"SELECT 1 FROM {meta.sql}_del LIMIT 1").fetchone() is not None

    def _upgrade(self, meta: TableMeta) -> None:
        """Bring a table written by an older version (one version per cell, no markers) to this layout."""
        t = meta.sql
        self.db.execute(MARKERS_DDL.format(t=t))
        index_cols = [r[2] for r in self.db.execute(f"PRAGMA index_info({t}_cell)")]
        if index_cols == (["row", "fam", "col", "ts"] if meta.multi_version else ["row", "fam", "col"]):
            return
        logger.info("upgrading the cells of table %s to this version's layout", _show(meta.name))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(f"ALTER TABLE {t} RENAME TO {t}_old")
            self.db.execute(f"DROP INDEX IF EXISTS {t}_cell")
            self._create_cells(meta)
            self.db.execute(f"INSERT INTO {t}(row, fam, col, ts, value) SELECT row, fam, col, ts, value"
                            f" FROM {t}_old ORDER BY row, fam, col")
            self.db.execute(f"DROP TABLE {t}_old")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _create_cells(self, meta: TableMeta) -> None:
        t = meta.sql
        self.db.execute(CELLS_DDL.format(t=t))
        self.db.execute(MARKERS_DDL.format(t=t))
        if not meta.multi_version:
            self.db.execute(SINGLE_VERSION_INDEX.format(t=t))
            return
        self.db.execute(MULTI_VERSION_INDEX.format(t=t))
        cases = " ".join(f"WHEN {int(f.rank)} THEN {int(f.max_versions) - 1}" for f in meta.families.values())
        self.db.execute(VERSIONS_TRIGGER.format(t=t, cases=cases))

    # -- tables ---------------------------------------------------------------
    @staticmethod
    def check_table_name(name: bytes) -> bytes:
        if not isinstance(name, bytes) or not name:
            raise StoreError("table name must not be empty", "illegal")
        if name.startswith(b"default:"):
            name = name[len(b"default:"):]
        ns, sep, qualifier = name.rpartition(b":")
        for part in ((ns, qualifier) if sep else (qualifier,)):
            if not part or part[:1] in (b".", b"-") or not set(part) <= TABLE_NAME_CHARS:
                raise StoreError(
                    f"IllegalArgumentException: illegal table name {name!r}: use letters, digits, "
                    f"'_', '-', '.' (not first), with an optional 'namespace:' prefix", "illegal")
        return name

    def table(self, name: bytes, *, enabled: bool = True) -> TableMeta:
        """The table's metadata; StoreError when missing (or disabled and ``enabled`` is required)."""
        meta = self.tables.get(name)
        if meta is None and isinstance(name, bytes) and name.startswith(b"default:"):
            meta = self.tables.get(name[len(b"default:"):])
        if meta is None:
            raise StoreError(f"TableNotFoundException: {_show(name)}")
        if enabled and not meta.enabled:
            raise StoreError(f"TableNotEnabledException: {_show(name)} is disabled")
        return meta

    def table_names(self) -> list[bytes]:
        with self.lock:
            return sorted(self.tables)

    def create_table(self, name: bytes, families: list[Family]) -> None:
        name = self.check_table_name(name)
        if not families:
            raise StoreError("IllegalArgumentException: a table needs at least one column family", "illegal")
        names = [f.name for f in families]
        if len(set(names)) != len(names):
            raise StoreError(f"IllegalArgumentException: duplicate column family in {names!r}", "illegal")
        for rank, fam_name in enumerate(sorted(names)):
            next(f for f in families if f.name == fam_name).rank = rank
        with self.lock:
            if name in self.tables:
                raise StoreError(f"TableExistsException: {_show(name)}", "exists")
            created = now_ms()
            self.db.execute("BEGIN IMMEDIATE")
            try:
                cur = self.db.execute("INSERT INTO hb_tables(name, enabled, created_ms) VALUES (?, 1, ?)",
                                      (name, created))
                meta = TableMeta(cur.lastrowid, name, True, created, {f.name: f for f in families})
                self.db.executemany(
                    "INSERT INTO hb_families VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [(meta.id, f.name, f.rank, f.max_versions, f.compression, int(f.in_memory),
                      f.bloom_filter_type, f.bloom_filter_vector_size, f.bloom_filter_nb_hashes,
                      int(f.block_cache_enabled), f.time_to_live) for f in families])
                self.db.execute(f"DROP TABLE IF EXISTS {meta.sql}")
                self.db.execute(f"DROP TABLE IF EXISTS {meta.sql}_del")
                self._create_cells(meta)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.tables[name] = meta
        logger.info("created table %s with families %s", _show(name),
                    ", ".join(_show(n) for n in sorted(names)))

    def set_enabled(self, name: bytes, enabled: bool) -> None:
        with self.lock:
            meta = self.table(name, enabled=False)
            if meta.enabled == enabled:
                exc = "TableNotDisabledException" if enabled else "TableNotEnabledException"
                raise StoreError(f"{exc}: {_show(meta.name)} is already {'enabled' if enabled else 'disabled'}")
            self.db.execute("UPDATE hb_tables SET enabled = ? WHERE id = ?", (int(enabled), meta.id))
            meta.enabled = enabled

    def delete_table(self, name: bytes) -> None:
        with self.lock:
            meta = self.table(name, enabled=False)
            if meta.enabled:
                raise StoreError(f"TableNotDisabledException: {_show(meta.name)} must be disabled before it is deleted")
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("DELETE FROM hb_families WHERE tbl = ?", (meta.id,))
                self.db.execute("DELETE FROM hb_tables WHERE id = ?", (meta.id,))
                self.db.execute(f"DROP TABLE IF EXISTS {meta.sql}")
                self.db.execute(f"DROP TABLE IF EXISTS {meta.sql}_del")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            del self.tables[meta.name]
        logger.info("deleted table %s", _show(meta.name))

    # -- selections -------------------------------------------------------------
    @staticmethod
    def selection(meta: TableMeta, columns: list[bytes] | None) -> Selection:
        """Parse a Thrift column list: ``cf`` selects a family, ``cf:q`` (``cf:`` = empty qualifier) one column."""
        if not columns:
            return Selection()
        fams, cols = set(), set()
        for column in columns:
            if not isinstance(column, bytes):
                raise StoreError(f"column names must be bytes, got {column!r}")
            fam, qual = split_column(column)
            rank = meta.rank(fam)
            if qual is None:
                fams.add(rank)
            else:
                cols.add(column)
        return Selection(frozenset(fams), frozenset(cols))

    # -- reads ----------------------------------------------------------------
    def get_row(self, meta: TableMeta, row: bytes, sel: Selection, before_ts: int | None,
                versions: int = 1) -> list[tuple]:
        """Cells (fam, col, ts, value) of one row in HBase order (newest version first), optionally with
        ts < before_ts, at most ``versions`` versions per column."""
        sql = f"SELECT fam, col, ts, value FROM {meta.sql} WHERE row = ?"
        params: tuple = (row,)
        if before_ts is not None:
            sql += " AND ts < ?"
            params = (row, before_ts)
        sql += " ORDER BY fam, col, ts DESC" if meta.multi_version else " ORDER BY fam, col"
        with self.lock:
            self._check_live(meta)
            cells = self.db.execute(sql, params).fetchall()
        if meta.multi_version:
            cells = _newest(cells, 0, versions)
        if sel.everything:
            return cells
        return [c for c in cells if c[0] in sel.families or c[1] in sel.columns]

    def scan_page(self, meta: TableMeta, start: bytes, start_inclusive: bool, stop: bytes | None,
                  reverse: bool, before_ts: int | None, limit: int, *,
                  stop_inclusive: bool = False, newest_only: bool = True) -> tuple[list[tuple], bool]:
        """Up to ``limit`` cells (row, fam, col, ts, value) from ``start`` on, in scan order, whole rows only.

        Returns (cells, exhausted). The last row of a full page is completed by a second query, so
        callers always receive complete rows. Without ``newest_only`` every stored version comes back
        (newest first within a column, oldest first in reverse scans), for filters to choose from.
        """
        t = meta.sql
        where, params = [], []
        if reverse:
            if start:
                where.append("row <= ?" if start_inclusive else "row < ?")
                params.append(start)
            if stop:
                where.append("row >= ?" if stop_inclusive else "row > ?")
                params.append(stop)
            order = "row DESC, fam DESC, col DESC"
        else:
            where.append("row >= ?" if start_inclusive else "row > ?")
            params.append(start)
            if stop:
                where.append("row <= ?" if stop_inclusive else "row < ?")
                params.append(stop)
            order = "row, fam, col"
        if before_ts is not None:
            where.append("ts < ?")
            params.append(before_ts)
        # (the ORDER BY must follow the cell index exactly, or SQLite sorts: reverse reads it backwards,
        # oldest version first)
        versions = (", ts" if reverse else ", ts DESC") if meta.multi_version else ""
        sql = (f"SELECT row, fam, col, ts, value FROM {t}"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order}{versions} LIMIT ?")
        params.append(limit)
        with self.lock:
            self._check_live(meta)
            cells = self.db.execute(sql, params).fetchall()
            exhausted = len(cells) < limit
            if not exhausted:
                last = cells[-1][0]
                while cells and cells[-1][0] == last:
                    cells.pop()
                tail_sql = f"SELECT row, fam, col, ts, value FROM {t} WHERE row = ?"
                tail_params: list = [last]
                if before_ts is not None:
                    tail_sql += " AND ts < ?"
                    tail_params.append(before_ts)
                tail_sql += (" ORDER BY fam DESC, col DESC" if reverse else " ORDER BY fam, col") + versions
                cells.extend(self.db.execute(tail_sql, tail_params).fetchall())
        if meta.multi_version and newest_only:
            cells = _newest(cells[::-1], 1, 1)[::-1] if reverse else _newest(cells, 1, 1)
        return cells, exhausted

    def _check_live(self, meta: TableMeta) -> None:
        current = self.tables.get(meta.name)
        if current is not meta:
            raise StoreError(f"TableNotFoundException: {_show(meta.name)}")
        if not meta.enabled:
            raise StoreError(f"TableNotEnabledException: {_show(meta.name)} is disabled")

    # -- writes ---------------------------------------------------------------
    def mutate(self, meta: TableMeta, puts: list[tuple], deletes: list[tuple]) -> None:
        """Apply puts (row, fam, col, ts, value) then deletes (row, fam, col|None, max_ts) in one transaction."""
        t = meta.sql
        with self.lock:
            self._check_live(meta)
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if puts and meta.has_markers:
                    puts = self._unmasked(meta, puts)
                if puts:
                    # Key order makes neighbouring inserts share B-tree pages; the sort is stable, so
                    # two puts of one cell keep their order (the later one wins).
                    puts = sorted(puts, key=_cell_key)
                    # Several cells per statement (fewer VM runs); rows of one VALUES list are applied in
                    # order, so the later put of a cell and timestamp still wins.
                    full = len(puts) - len(puts) % PUTS_PER_STATEMENT
                    if full:
                        flat = list(itertools.chain.from_iterable(puts[:full]))
                        step = 5 * PUTS_PER_STATEMENT
                        self.db.executemany(_upsert_sql(t, PUTS_PER_STATEMENT, meta.multi_version),
                                            [flat[i:i + step] for i in range(0, len(flat), step)])
                    if full < len(puts):
                        self.db.executemany(_upsert_sql(t, 1, meta.multi_version), puts[full:])
                if deletes:
                    fam_deletes = [(r, f, ts) for r, f, c, ts in deletes if c is None]
                    col_deletes = [(r, f, c, ts) for r, f, c, ts in deletes if c is not None]
                    if fam_deletes:
                        self.db.executemany(f"DELETE FROM {t} WHERE row = ? AND fam = ? AND ts <= ?", fam_deletes)
                    if col_deletes:
                        self.db.executemany(
                            f"DELETE FROM {t} WHERE row = ? AND fam = ? AND col = ? AND ts <= ?", col_deletes)
                    self.db.executemany(
                        f"INSERT INTO {t}_del VALUES (?,?,?,?) ON CONFLICT(row, fam, col)"
                        f" DO UPDATE SET ts = max(ts, excluded.ts)",
                        [(r, f, FAMILY_MARKER if c is None else c, ts) for r, f, c, ts in deletes])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            if deletes:
                meta.has_markers = True

    def _unmasked(self, meta: TableMeta, puts: list[tuple]) -> list[tuple]:
        """The puts that no delete marker hides (a marker hides cells with ts <= its own)."""
        rows = list({p[0] for p in puts})
        markers: dict[tuple, int] = {}
        for i in range(0, len(rows), 500):
            chunk = rows[i:i + 500]
            for row, fam, col, ts in self.db.execute(
                    f"SELECT row, fam, col, ts FROM {meta.sql}_del WHERE row IN ({','.join('?' * len(chunk))})",
                    chunk):
                markers[(row, fam, col)] = ts
        if not markers:
            return puts
        return [p for p in puts
                if markers.get((p[0], p[1], FAMILY_MARKER), -1) < p[3] and markers.get(p[:3], -1) < p[3]]

    def increment(self, meta: TableMeta, row: bytes, fam: int, col: bytes, amount: int) -> int:
        """Add ``amount`` to an 8-byte big-endian counter cell (missing = 0); return the new value.

        The new version's timestamp is max(now, newest + 1), as HBase's; when the newest version is from
        this very millisecond the call waits for the next one, so that fast increments never run ahead of
        the clock (a later put with the server's time would then hide behind them).
        """
        while True:
            with self.lock:
                self._check_live(meta)
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    new = self._increment_once(meta, row, fam, col, amount)
                    self.db.execute("COMMIT" if new is not None else "ROLLBACK")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
            if new is not None:
                return new
            time.sleep(0.0002)

    def _increment_once(self, meta: TableMeta, row: bytes, fam: int, col: bytes, amount: int) -> int | None:
        """The increment inside a transaction; None (nothing written) while the newest version is from now."""
        t = meta.sql
        found = self.db.execute(f"SELECT ts, value FROM {t} WHERE row = ? AND fam = ? AND col = ?"
                                f" ORDER BY ts DESC LIMIT 1", (row, fam, col)).fetchone()
        old, now = 0, now_ms()
        ts = now
        if found is not None:
            old_ts, raw = found
            if old_ts == now:
                return None
            if len(raw) != 8:
                raise StoreError(f"DoNotRetryIOException: Field is not a long, it's {len(raw)} bytes wide "
                                 f"(column {_show(col)} of row {row!r})")
            old = _unpack_i64(raw)[0]
            ts = max(now, old_ts + 1)
        new = (old + amount + 2**63) % 2**64 - 2**63  # Java long arithmetic wraps
        cell = (row, fam, col, ts, _pack_i64(new))
        # A delete marker at or after ts hides the new version, as in HBase.
        if not meta.has_markers or self._unmasked(meta, [cell]):
            self.db.execute(_upsert_sql(t, 1, meta.multi_version), cell)
        return new


_cell_key = operator.itemgetter(0, 1, 2)   # (row, fam, col) of a put


def _newest(cells: list[tuple], first: int, versions: int) -> list[tuple]:
    """The first ``versions`` cells of each run of cells with equal ``cell[:first + 2]`` (the cell's
    (fam, col) or (row, fam, col)): the newest versions when each run is newest first."""
    out, key, seen = [], None, 0
    for cell in cells:
        k = cell[:first + 2]
        if k != key:
            key, seen = k, 0
        seen += 1
        if seen <= versions:
            out.append(cell)
    return out
PUTS_PER_STATEMENT = 8   # cells per INSERT: ~10% less SQLite time per cell than one per statement


@functools.lru_cache(maxsize=256)
def _upsert_sql(table: str, cells: int, multi_version: bool) -> str:
    """INSERT of ``cells`` versions: a put of an existing cell and timestamp replaces its value (the later
    wins); in a single-version table the newest timestamp wins (ties: the later put)."""
    sql = f"INSERT INTO {table}(row, fam, col, ts, value) VALUES {','.join(['(?,?,?,?,?)'] * cells)}"
    if multi_version:
        return sql + " ON CONFLICT(row, fam, col, ts) DO UPDATE SET value = excluded.value"
    return (sql + f" ON CONFLICT(row, fam, col) DO UPDATE SET ts = excluded.ts, value = excluded.value"
                  f" WHERE excluded.ts >= {table}.ts")


def _show(name: bytes) -> str:
    return name.decode("utf-8", errors="backslashreplace") if isinstance(name, bytes) else repr(name)
