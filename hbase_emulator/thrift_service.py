"""The Hbase Thrift (v1) service of the embedded server: happybase's calls mapped onto the SQLite store, with HBase's semantics."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
from typing import Any

import thriftpy2

from hbase_emulator.filters import FilterError, apply_filter, parse_filter
from hbase_emulator.thrift_store import (
    BLOOM_TYPES, COMPRESSIONS, FOREVER_TTL, MAX_ROW_LENGTH, Family, Selection, Store, StoreError, TableMeta,
    now_ms, split_column,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_SCANNERS = 10_000       # HBASE_SERVER_MAX_SCANNERS (open scanners across all clients)
DEFAULT_SCAN_PAGE_CELLS = 4_096     # HBASE_SERVER_SCAN_PAGE_CELLS (cells read from SQLite per page at most)


def hbase_idl_path() -> str:
    """The Hbase.thrift that the installed happybase ships (no copy of the IDL lives in this project)."""
    import happybase

    return os.path.join(os.path.dirname(happybase.__file__), "Hbase.thrift")


# Loaded under its own module name: happybase's clients in the same process keep their own Hbase_thrift types.
Hbase_thrift = thriftpy2.load(hbase_idl_path(), module_name="hbase_emulator_thrift")
Hbase = Hbase_thrift.Hbase
TCell, TRowResult, TColumn = Hbase_thrift.TCell, Hbase_thrift.TRowResult, Hbase_thrift.TColumn
IOError_ = Hbase_thrift.IOError
IllegalArgument = Hbase_thrift.IllegalArgument
AlreadyExists = Hbase_thrift.AlreadyExists


class _Cell(tuple):
    """A TCell for the wire: a tuple with the IDL's thrift_spec (writers only read attributes)."""

    __slots__ = ()
    thrift_spec = TCell.thrift_spec
    value = property(lambda self: self[0])
    timestamp = property(lambda self: self[1])


class _Column(tuple):
    __slots__ = ()
    thrift_spec = TColumn.thrift_spec
    columnName = property(lambda self: self[0])
    cell = property(lambda self: self[1])


class _RowResult(tuple):
    __slots__ = ()
    thrift_spec = TRowResult.thrift_spec
    row = property(lambda self: self[0])
    columns = property(lambda self: self[1])
    sortedColumns = property(lambda self: self[2])


_new = tuple.__new__


def row_result(row: bytes, cells, sort_columns: bool) -> _RowResult:
    """cells: iterable of (col, ts, value)."""
    if sort_columns:
        return _new(_RowResult, (row, None, [_new(_Column, (c, _new(_Cell, (v, ts)))) for c, ts, v in cells]))
    return _new(_RowResult, (row, {c: _new(_Cell, (v, ts)) for c, ts, v in cells}, None))


def _illegal(message: str) -> IllegalArgument:
    return IllegalArgument(message=message)


def _check_row(row: Any, *, what: str = "row key") -> bytes:
    if not isinstance(row, bytes):
        raise StoreError(f"{what} must be bytes, got {type(row).__name__}", "illegal")
    if not row:
        raise StoreError(f"IllegalArgumentException: {what} is empty (HBase needs a non-empty row key)", "illegal")
    if len(row) > MAX_ROW_LENGTH:
        raise StoreError(f"IllegalArgumentException: {what} is {len(row)} bytes, longer than {MAX_ROW_LENGTH}",
                         "illegal")
    return row


def _check_ts(ts: Any, what: str = "timestamp") -> int:
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise StoreError(f"{what} must be an integer")
    if ts < 0:
        raise StoreError(f"IllegalArgumentException: {what} must be >= 0, got {ts}", "illegal")
    return ts


class Scanner:
    """One open scan: keyset-paged reads from the store, filters applied row by row."""

    def __init__(self, store: Store, meta: TableMeta, *, start: bytes, stop: bytes | None, stop_inclusive: bool,
                 reverse: bool,
                 selection: Selection, before_ts: int | None, filt, batch: int | None, sort_columns: bool,
                 caching: int | None, owner: int, page_cells: int):
        self.store, self.meta = store, meta
        self.position, self.inclusive = start, True
        self.stop, self.stop_inclusive, self.reverse = stop, stop_inclusive, reverse
        self.selection, self.before_ts = selection, before_ts
        self.filt, self.batch, self.sort_columns = filt, batch, sort_columns
        self.caching = caching if caching and caching > 0 else 100
        self.owner = owner
        self.page_cells = page_cells
        self.pending: list = []
        self.exhausted = False
        self.cells_per_row = max(1, len(meta.families))
        self.lock = threading.Lock()

    def next(self, n: int) -> list:
        with self.lock:
            while len(self.pending) < n and not self.exhausted:
                self._fill(max(n - len(self.pending), self.caching))
            out, self.pending = self.pending[:n], self.pending[n:]
            return out

    def _fill(self, rows_wanted: int) -> None:
        limit = min(self.page_cells, max(64, int(rows_wanted * self.cells_per_row * 1.25) + 8))
        cells, exhausted = self.store.scan_page(self.meta, self.position, self.inclusive, self.stop,
                                                self.reverse, self.before_ts, limit,
                                                stop_inclusive=self.stop_inclusive,
                                                newest_only=self.filt is None)
        if exhausted:
            self.exhausted = True
        if not cells:
            self.exhausted = True
            return
        sel, filt, batch, sort_columns, reverse = (self.selection, self.filt, self.batch, self.sort_columns,
                                                   self.reverse)
        everything = sel.everything
        pending = self.pending
        nrows = 0
        filter_done = False
        for row, group in itertools.groupby(cells, key=_first):
            nrows += 1
            if reverse:
                group = reversed(list(group))
            if everything:
                row_cells = [(c[2], c[3], c[4]) for c in group]
            else:
                row_cells = [(c[2], c[3], c[4]) for c in group if c[1] in sel.families or c[2] in sel.columns]
            self.position, self.inclusive = row, False
            if not row_cells:
                continue
            if filt is not None:
                row_cells, filter_done = apply_filter(filt, row, row_cells)
                if row_cells is None:
                    if filter_done:
                        break
                    continue
            if batch:
                for i in range(0, len(row_cells), batch):
                    pending.append(row_result(row, row_cells[i:i + batch], sort_columns))
            else:
                pending.append(row_result(row, row_cells, sort_columns))
            if filter_done:
                break
        if filter_done:
            self.exhausted = True
        self.cells_per_row = max(1.0, len(cells) / max(nrows, 1))


def _first(cell):
    return cell[0]


class HbaseHandler:
    """Implements the Hbase service over a Store. Every method raises only the IDL's exceptions."""

    def __init__(self, store: Store, *, host: str = "127.0.0.1", port: int = 9090,
                 max_scanners: int = DEFAULT_MAX_SCANNERS, page_cells: int = DEFAULT_SCAN_PAGE_CELLS):
        self.store = store
        self.host, self.port = host, port
        self.max_scanners = max_scanners
        self.page_cells = page_cells
        self.scanners: dict[int, Scanner] = {}
        self._scanner_ids = itertools.count(1)
        self._scanners_lock = threading.Lock()
        self.local = threading.local()

    # -- connection bookkeeping (called by the server) -----------------------------
    def connection_opened(self, conn_id: int) -> None:
        self.local.conn_id = conn_id

    def connection_closed(self, conn_id: int) -> None:
        with self._scanners_lock:
            for sid in [sid for sid, s in self.scanners.items() if s.owner == conn_id]:
                del self.scanners[sid]

    # -- tables -------------------------------------------------------------------
    def getTableNames(self):
        return self.store.table_names()

    def createTable(self, tableName, columnFamilies):
        if not columnFamilies:
            raise _illegal("IllegalArgumentException: a table needs at least one column family")
        families = []
        for cd in columnFamilies:
            families.append(self._family(cd))
        self.store.create_table(tableName, families)

    @staticmethod
    def _family(cd) -> Family:
        name = cd.name
        if not isinstance(name, bytes) or not name:
            raise _illegal("IllegalArgumentException: column family name must not be empty")
        if name.endswith(b":"):
            name = name[:-1]
        if not name or b":" in name or name.startswith(b".") or any(b < 0x20 or b == 0x7f for b in name):
            raise _illegal(f"IllegalArgumentException: illegal column family name {cd.name!r}")
        max_versions = 3 if cd.maxVersions is None else cd.maxVersions
        if max_versions < 1:
            raise _illegal(f"IllegalArgumentException: maxVersions must be >= 1, got {max_versions}")
        compression = (cd.compression or "NONE").upper()
        if compression not in COMPRESSIONS:
            raise _illegal(f"IllegalArgumentException: unknown compression {cd.compression!r} "
                           f"(one of {', '.join(COMPRESSIONS)})")
        bloom = (cd.bloomFilterType or "NONE").upper()
        if bloom not in BLOOM_TYPES:
            raise _illegal(f"IllegalArgumentException: unknown bloom filter type {cd.bloomFilterType!r} "
                           f"(one of {', '.join(BLOOM_TYPES)})")
        ttl = -1 if cd.timeToLive is None else cd.timeToLive
        if ttl not in (-1, FOREVER_TTL):
            raise IOError_(message=f"time_to_live={ttl} is not supported by the embedded HBase server: "
                                   "cells never expire (leave time_to_live unset)")
        return Family(name=name, rank=0, max_versions=max_versions, compression=compression,
                      in_memory=bool(cd.inMemory), bloom_filter_type=bloom,
                      bloom_filter_vector_size=cd.bloomFilterVectorSize or 0,
                      bloom_filter_nb_hashes=cd.bloomFilterNbHashes or 0,
                      block_cache_enabled=bool(cd.blockCacheEnabled), time_to_live=ttl)

    def deleteTable(self, tableName):
        self.store.delete_table(tableName)

    def enableTable(self, tableName):
        self.store.set_enabled(tableName, True)

    def disableTable(self, tableName):
        self.store.set_enabled(tableName, False)

    def isTableEnabled(self, tableName):
        return self.store.table(tableName, enabled=False).enabled

    def compact(self, tableNameOrRegionName):
        self._table_or_region(tableNameOrRegionName)

    def majorCompact(self, tableNameOrRegionName):
        self._table_or_region(tableNameOrRegionName)

    def _table_or_region(self, name: bytes) -> TableMeta:
        if isinstance(name, bytes) and name in self.store.tables:
            return self.store.table(name, enabled=False)
        for meta in list(self.store.tables.values()):
            if name == self._region_name(meta):
                return meta
        return self.store.table(name, enabled=False)  # raises TableNotFoundException

    @staticmethod
    def _region_name(meta: TableMeta) -> bytes:
        return meta.name + b",," + str(meta.created_ms).encode() + b"." + f"{meta.id:032x}".encode() + b"."

    def getColumnDescriptors(self, tableName):
        meta = self.store.table(tableName, enabled=False)
        return {
            f.name + b":": Hbase_thrift.ColumnDescriptor(
                name=f.name + b":", maxVersions=f.max_versions, compression=f.compression,
                inMemory=f.in_memory, bloomFilterType=f.bloom_filter_type,
                bloomFilterVectorSize=f.bloom_filter_vector_size, bloomFilterNbHashes=f.bloom_filter_nb_hashes,
                blockCacheEnabled=f.block_cache_enabled,
                timeToLive=FOREVER_TTL if f.time_to_live == -1 else f.time_to_live)  # HBase reports FOREVER
            for f in meta.families.values()
        }

    def getTableRegions(self, tableName):
        meta = self.store.table(tableName, enabled=False)
        return [Hbase_thrift.TRegionInfo(startKey=b"", endKey=b"", id=meta.created_ms, name=self._region_name(meta),
                                         version=1, serverName=self.host.encode(), port=self.port)]

    # -- reads --------------------------------------------------------------------
    def _get_rows(self, tableName, rows, columns, before_ts):
        meta = self.store.table(tableName)
        sel = self.store.selection(meta, columns)
        if before_ts is not None:
            _check_ts(before_ts)
        out = []
        for row in rows:
            _check_row(row)
            cells = self.store.get_row(meta, row, sel, before_ts)
            if cells:
                out.append(row_result(row, ((c[1], c[2], c[3]) for c in cells), False))
        return out

    def getRow(self, tableName, row, attributes):
        return self._get_rows(tableName, [row], None, None)

    def getRowWithColumns(self, tableName, row, columns, attributes):
        return self._get_rows(tableName, [row], columns, None)

    def getRowTs(self, tableName, row, timestamp, attributes):
        return self._get_rows(tableName, [row], None, timestamp)

    def getRowWithColumnsTs(self, tableName, row, columns, timestamp, attributes):
        return self._get_rows(tableName, [row], columns, timestamp)

    def getRows(self, tableName, rows, attributes):
        return self._get_rows(tableName, rows or [], None, None)

    def getRowsWithColumns(self, tableName, rows, columns, attributes):
        return self._get_rows(tableName, rows or [], columns, None)

    def getRowsTs(self, tableName, rows, timestamp, attributes):
        return self._get_rows(tableName, rows or [], None, timestamp)

    def getRowsWithColumnsTs(self, tableName, rows, columns, timestamp, attributes):
        return self._get_rows(tableName, rows or [], columns, timestamp)

    def _get_versions(self, tableName, row, column, before_ts, numVersions):
        if not isinstance(numVersions, int) or numVersions < 1:
            raise IOError_(message=f"IllegalArgumentException: numVersions must be >= 1, got {numVersions!r}")
        if not isinstance(column, bytes) or not column:
            raise IOError_(message="column must be non-empty bytes ('family' or 'family:qualifier')")
        meta = self.store.table(tableName)
        _check_row(row)
        sel = self.store.selection(meta, [column])
        return [_new(_Cell, (c[3], c[2])) for c in self.store.get_row(meta, row, sel, before_ts, numVersions)]

    def get(self, tableName, row, column, attributes):
        return self._get_versions(tableName, row, column, None, 1)

    def getVer(self, tableName, row, column, numVersions, attributes):
        return self._get_versions(tableName, row, column, None, numVersions)

    def getVerTs(self, tableName, row, column, timestamp, numVersions, attributes):
        return self._get_versions(tableName, row, column, _check_ts(timestamp), numVersions)

    # -- writes -------------------------------------------------------------------
    def _mutate(self, tableName, batches, timestamp):
        meta = self.store.table(tableName)
        if timestamp is None:
            put_ts = delete_ts = now_ms()
        else:
            put_ts = delete_ts = _check_ts(timestamp)
        families = meta.families
        puts, deletes = [], []
        # column -> (family rank, stored column for a put, column for a delete or None for the whole family):
        # a call repeats the same few columns thousands of times.
        columns: dict[bytes, tuple[int, bytes, bytes | None]] = {}
        for bm in batches or ():
            row = bm.row
            _check_row(row)
            for m in bm.mutations or ():
                column = m.column
                info = columns.get(column) if type(column) is bytes else None
                if info is None:
                    if not isinstance(column, bytes) or not column:
                        raise _illegal("IllegalArgumentException: mutation without a column name")
                    fam, sep, qual = column.partition(b":")
                    family = families.get(fam)
                    if family is None:
                        meta.rank(fam)  # raises NoSuchColumnFamilyException
                    info = columns[column] = (family.rank, column if sep else column + b":",
                                              column if sep else None)
                if m.isDelete:
                    deletes.append((row, info[0], info[2], delete_ts))
                else:
                    value = m.value
                    puts.append((row, info[0], info[1], put_ts, b"" if value is None else value))
        if puts or deletes:
            self.store.mutate(meta, puts, deletes)

    def mutateRow(self, tableName, row, mutations, attributes):
        self._mutate(tableName, [Hbase_thrift.BatchMutation(row=row, mutations=mutations)], None)

    def mutateRowTs(self, tableName, row, mutations, timestamp, attributes):
        self._mutate(tableName, [Hbase_thrift.BatchMutation(row=row, mutations=mutations)], timestamp)

    def mutateRows(self, tableName, rowBatches, attributes):
        self._mutate(tableName, rowBatches, None)

    def mutateRowsTs(self, tableName, rowBatches, timestamp, attributes):
        self._mutate(tableName, rowBatches, timestamp)

    def _delete(self, tableName, row, column, timestamp):
        mutations = [Hbase_thrift.Mutation(isDelete=True, column=c) for c in
                     ([column] if column is not None else
                      [f.name for f in self.store.table(tableName).families.values()])]
        self._mutate(tableName, [Hbase_thrift.BatchMutation(row=row, mutations=mutations)], timestamp)

    def deleteAll(self, tableName, row, column, attributes):
        self._delete(tableName, row, column, None)

    def deleteAllTs(self, tableName, row, column, timestamp, attributes):
        self._delete(tableName, row, column, timestamp)

    def deleteAllRow(self, tableName, row, attributes):
        self._delete(tableName, row, None, None)

    def deleteAllRowTs(self, tableName, row, timestamp, attributes):
        self._delete(tableName, row, None, timestamp)

    def atomicIncrement(self, tableName, row, column, value):
        meta = self.store.table(tableName)
        _check_row(row)
        if not isinstance(column, bytes) or not column:
            raise _illegal("IllegalArgumentException: column must be non-empty bytes")
        if not isinstance(value, int):
            raise _illegal("IllegalArgumentException: increment amount must be an integer")
        fam, qual = split_column(column)
        rank = meta.rank(fam)
        return self.store.increment(meta, row, rank, fam + b":" + (qual or b""), value)

    def increment(self, increment):
        self.atomicIncrement(increment.table, increment.row, increment.column, increment.ammount or 0)

    def incrementRows(self, increments):
        for inc in increments or ():
            self.increment(inc)

    # -- scanners -----------------------------------------------------------------
    def scannerOpenWithScan(self, tableName, scan, attributes):
        scan = scan or Hbase_thrift.TScan()
        meta = self.store.table(tableName)
        reverse = bool(scan.reversed)
        start = scan.startRow or b""
        stop = scan.stopRow or None
        for value, what in ((start, "startRow"), (stop, "stopRow")):
            if value is not None and not isinstance(value, bytes):
                raise IOError_(message=f"{what} must be bytes")
        # HBase reads a scan whose start and stop rows are equal as a get of that row
        stop_inclusive = bool(start) and stop == start
        sel = self.store.selection(meta, scan.columns)
        before_ts = None if scan.timestamp is None else _check_ts(scan.timestamp, "scan timestamp")
        filt = None
        if scan.filterString:
            try:
                filt = parse_filter(scan.filterString, reversed=reverse)
            except FilterError as exc:
                raise IOError_(message=f"bad filter string {scan.filterString!r}: {exc}") from None
        batch = scan.batchSize
        if batch is not None:
            if batch < 1:
                raise IOError_(message=f"IllegalArgumentException: batchSize must be >= 1, got {batch}")
            if filt is not None and filt.has_filter_row():
                raise IOError_(message="IncompatibleFilterException: cannot set batch on a scan using a "
                                       "filter that decides on whole rows")
        return self._register(Scanner(
            self.store, meta, start=start, stop=stop, stop_inclusive=stop_inclusive, reverse=reverse,
            selection=sel, before_ts=before_ts,
            filt=filt, batch=batch, sort_columns=bool(scan.sortColumns), caching=scan.caching,
            owner=getattr(self.local, "conn_id", 0), page_cells=self.page_cells))

    def _register(self, scanner: Scanner) -> int:
        with self._scanners_lock:
            if len(self.scanners) >= self.max_scanners:
                raise IOError_(message=f"too many open scanners ({self.max_scanners}); close scanners you "
                                       "no longer need")
            sid = next(self._scanner_ids) % 2**31 or next(self._scanner_ids)
            self.scanners[sid] = scanner
            return sid

    def scannerOpen(self, tableName, startRow, columns, attributes):
        return self.scannerOpenWithScan(tableName, Hbase_thrift.TScan(startRow=startRow, columns=columns), {})

    def scannerOpenWithStop(self, tableName, startRow, stopRow, columns, attributes):
        return self.scannerOpenWithScan(
            tableName, Hbase_thrift.TScan(startRow=startRow, stopRow=stopRow, columns=columns), {})

    def scannerOpenWithPrefix(self, tableName, startAndPrefix, columns, attributes):
        return self.scannerOpenWithScan(
            tableName, Hbase_thrift.TScan(startRow=startAndPrefix, columns=columns,
                                          filterString=b"PrefixFilter('" + (startAndPrefix or b"").replace(
                                              b"'", b"''") + b"')"), {})

    def scannerOpenTs(self, tableName, startRow, columns, timestamp, attributes):
        return self.scannerOpenWithScan(
            tableName, Hbase_thrift.TScan(startRow=startRow, columns=columns, timestamp=timestamp), {})

    def scannerOpenWithStopTs(self, tableName, startRow, stopRow, columns, timestamp, attributes):
        return self.scannerOpenWithScan(
            tableName, Hbase_thrift.TScan(startRow=startRow, stopRow=stopRow, columns=columns,
                                          timestamp=timestamp), {})

    def _scanner(self, sid) -> Scanner:
        scanner = self.scanners.get(sid)
        if scanner is None:
            raise _illegal(f"scanner ID {sid} is invalid (closed, expired or never opened)")
        return scanner

    def scannerGetList(self, id, nbRows):
        scanner = self._scanner(id)
        if not isinstance(nbRows, int) or nbRows < 1:
            return []
        return scanner.next(nbRows)

    def scannerGet(self, id):
        return self.scannerGetList(id, 1)

    def scannerClose(self, id):
        with self._scanners_lock:
            if self.scanners.pop(id, None) is None:
                raise _illegal(f"scanner ID {id} is invalid (closed, expired or never opened)")

    # -- not supported ------------------------------------------------------------
    def _unsupported(self, name: str):
        raise IOError_(message=f"{name} is not supported by the embedded HBase server")

    def getRowOrBefore(self, tableName, row, family):
        self._unsupported("getRowOrBefore (deprecated in HBase)")

    def getRegionInfo(self, row):
        self._unsupported("getRegionInfo")

    def append(self, append):
        self._unsupported("append")

    def checkAndPut(self, tableName, row, column, value, mput, attributes):
        self._unsupported("checkAndPut")


# -- error wrapping ---------------------------------------------------------------------
def _declared(method: str) -> dict[str, type]:
    spec = getattr(Hbase, method + "_result").thrift_spec
    return {v[1]: v[2] for k, v in spec.items() if k != 0}


def _store_error_to_idl(exc: StoreError, declared: dict[str, type]) -> Exception:
    cls = {"illegal": IllegalArgument, "exists": AlreadyExists}.get(exc.kind, IOError_)
    if cls not in declared.values():
        cls = IOError_
    return cls(message=str(exc))


class SafeHandler:
    """Wraps every method of the Hbase service: anything but the IDL's own exceptions becomes IOError."""

    def __init__(self, handler):
        self._handler = handler
        for method in Hbase.thrift_services:
            setattr(self, method, self._wrap(method))

    def _wrap(self, method: str):
        declared = _declared(method)
        allowed = tuple(declared.values())
        target = getattr(self._handler, method, None)
        if target is None:
            def target(*args):
                raise IOError_(message=f"{method} is not supported by the embedded HBase server")

        @functools.wraps(target)
        def call(*args):
            try:
                return target(*args)
            except allowed:
                raise
            except StoreError as exc:
                raise _store_error_to_idl(exc, declared) from None
            except FilterError as exc:
                raise IOError_(message=str(exc)) from None
            except (IOError_, IllegalArgument, AlreadyExists) as exc:
                raise IOError_(message=exc.message) from None
            except Exception as exc:
                logger.exception("internal error in %s", method)
                raise IOError_(message=f"internal error in {method}: {type(exc).__name__}: {exc}") from None
        return call

    def __getattr__(self, name):
        return getattr(self._handler, name)
