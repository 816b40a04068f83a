"""Embedded HBase Thrift (v1) server on SQLite: `python -m hbase_emulator.server --host H --port P --db PATH`.

A single-machine stand-in for HBase and its Thrift server, built on thriftpy2
from the ``Hbase.thrift`` that happybase ships. One port answers the binary
and the compact protocol over the buffered and the framed transport: each
connection's first bytes say which (``0x80 0x01`` strict binary, ``0x82``
compact, otherwise a 4-byte frame length followed by one of those).

Semantics follow HBase for every call happybase makes: tables (create with
families and options, enable/disable, delete only when disabled, list,
regions, compact/majorCompact as no-ops), gets and multi-gets with column
selection, scans (start/stop, row_prefix, columns, timestamp, caching,
filter string, batching, sorted columns, reverse, limit), mutateRows(Ts)
(all puts of a call, then all deletes, in one SQLite transaction),
server-assigned millisecond timestamps, time-range reads (``*Ts`` methods
and ``TScan.timestamp`` return cells with ``ts < T``), 8-byte big-endian
atomic counters, and the filter language (see hbase_emulator.filters).

Versions: each family keeps its ``max_versions`` newest versions per cell (pruned as they are written);
reads return the newest version in the time range, ``getVer`` up to N; a filter that skips a version
sees the next older one, as in HBase. Deletes leave markers (per cell or family, with the newest
delete's timestamp): a later put at or below a marker stays hidden, as in HBase before a major
compaction. Counters take max(now, newest + 1) as HBase does, and never run ahead of the clock (an
increment in the same millisecond as the cell's newest version waits for the next one), so a put with
the server's time after a burst of increments is the newest version, as on HBase.

Known differences from Apache HBase 2.6 (asserted by tests/hbase_emulator/test_conformance.py):
- Versions beyond ``max_versions`` are pruned at write. HBase keeps them in its memstore until a
  flush, so there a time-range read (``timestamp=``) can still find a version beyond ``max_versions``;
  the emulator answers as HBase does after a flush (not worth keeping every version: unbounded growth).
- ColumnCountGetFilter in a scan counts each row's cells from zero; HBase drops cells of a row's later
  family after a row with more cells than the limit (the filter is meant for gets).
- A reversed scan with a filterIfMissing SingleColumnValueFilter: HBase's Thrift server answers
  IOError, the emulator the rows.
- Markers are never compacted away (``majorCompact`` is a no-op), so an old put after a delete stays
  hidden even after a major compaction.

Limits (each answers the IDL's ``IOError`` with a clear message, or is noted):
- ``time_to_live`` other than unset/FOREVER is refused (IOError). Compression,
  bloom filter, in-memory and block-cache options are validated and
  recorded only.
- Column names: ``cf`` selects or deletes a whole family; ``cf:`` is the
  column with an empty qualifier (HBase 0.96+ parsing).
- A scan whose start and stop rows are equal reads that one row, as HBase does.
- Filters: KeyOnly, FirstKeyOnly, Prefix, ColumnPrefix, MultipleColumnPrefix,
  ColumnRange, ColumnCountGet, Page, InclusiveStop, Row, Qualifier, Value,
  Family, SingleColumnValue(Exclude), Timestamps, with AND, OR, SKIP, WHILE
  and parentheses; comparators binary, binaryprefix, substring, regexstring.
  Others answer IOError. A filter only sees rows that have cells in the
  selected columns and time range.
- Not supported (IOError): getRowOrBefore, getRegionInfo, append, checkAndPut.
- Scanners live until closed or until their connection closes; at most
  HBASE_SERVER_MAX_SCANNERS are open at once. One region per table.
- No authentication or TLS, no limit on a single message's size: bind it to
  loopback or a trusted network, like a stock HBase Thrift server.
- One SQLite connection behind one lock: requests run one at a time against
  the database (Python threads serve the connections). WAL mode with
  synchronous=NORMAL: a committed call survives a crash of the process.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import signal
import socket
import threading
import time

import click

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"                  # HBASE_SERVER_HOST
DEFAULT_PORT = 9090                         # HBASE_SERVER_PORT
DEFAULT_DB = "hbase.sqlite"                 # HBASE_SERVER_DB (a file path, or :memory:)
DEFAULT_BACKLOG = 128                       # HBASE_SERVER_BACKLOG
DEFAULT_MAX_CONNECTIONS = 1_000             # HBASE_SERVER_MAX_CONNECTIONS
# gc.set_threshold "gen0,gen1,gen2": every mutateRows builds a Python object per cell, and Python's
# default (700,10,10) collected so often that it cost ~10% of the server's CPU (bench.topology).
DEFAULT_GC_THRESHOLDS = "20000,50,100"      # HBASE_SERVER_GC_THRESHOLDS
ACCEPT_POLL_SECONDS = 0.25
FIRST_BYTES_TIMEOUT = 30.0                  # a client must send its first request within this time

BINARY_VERSION_1 = 0x80                     # first byte of a strict binary message (0x80 0x01)
COMPACT_PROTOCOL_ID = 0x82


def detect(first: bytes) -> tuple[str, str] | None:
    """(protocol, transport) from a connection's first 5 bytes, or None when unrecognised."""
    if len(first) >= 2 and first[0] == BINARY_VERSION_1 and first[1] == 0x01:
        return "binary", "buffered"
    if first[:1] == bytes([COMPACT_PROTOCOL_ID]):
        return "compact", "buffered"
    if len(first) >= 5 and first[0] < 0x80:  # 4-byte big-endian frame length, then the message
        if first[4] == BINARY_VERSION_1:
            return "binary", "framed"
        if first[4] == COMPACT_PROTOCOL_ID:
            return "compact", "framed"
    return None


def _peek(sock: socket.socket, n: int) -> bytes:
    """Wait for the first ``n`` bytes without consuming them (b'' when the client leaves first)."""
    data = b""
    while len(data) < n:
        data = sock.recv(n, socket.MSG_PEEK | socket.MSG_WAITALL)
        if not data or len(data) >= n:
            break
        if data[0] in (BINARY_VERSION_1, COMPACT_PROTOCOL_ID) and len(data) >= 2:
            break
        time.sleep(0.001)  # a partial first message: wait for the rest
    return data


class ThriftServer:
    """Threaded accept loop, one thread per connection, protocol and transport detected per connection."""

    def __init__(self, handler, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                 backlog: int = DEFAULT_BACKLOG, max_connections: int = DEFAULT_MAX_CONNECTIONS):
        from hbase_emulator.thrift_service import Hbase

        if not isinstance(port, int) or not 0 <= port < 65536:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        self.service = Hbase
        self.handler = handler
        self.host = host
        self.max_connections = max_connections
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # SO_REUSEADDR lets a restart bind while old connections sit in TIME_WAIT; Linux still refuses a
        # second listener on the port (no SO_REUSEPORT, so two servers cannot silently share it).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self.sock.listen(backlog)
        self.sock.settimeout(ACCEPT_POLL_SECONDS)
        self.port = self.sock.getsockname()[1]
        self._stopping = threading.Event()
        self._conns: dict[int, socket.socket] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def serve_forever(self) -> None:
        from thriftpy2.thrift import TProcessor

        processor = TProcessor(self.service, self.handler)
        try:
            while not self._stopping.is_set():
                try:
                    conn, addr = self.sock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    if self._stopping.is_set():
                        break
                    raise
                conn.settimeout(None)  # idle clients are never dropped
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._lock:
                    if len(self._conns) >= self.max_connections:
                        logger.warning("refusing %s:%s: %d connections open", *addr, len(self._conns))
                        conn.close()
                        continue
                    cid = next(self._ids)
                    self._conns[cid] = conn
                    thread = threading.Thread(target=self._serve_client, args=(cid, conn, addr, processor),
                                              name=f"hbase-conn-{cid}", daemon=True)
                    self._threads[cid] = thread
                thread.start()
        finally:
            self.sock.close()

    def _serve_client(self, cid: int, conn: socket.socket, addr, processor) -> None:
        from thriftpy2.protocol import TCompactProtocol, TCyBinaryProtocol
        from thriftpy2.transport import TCyBufferedTransport, TCyFramedTransport, TSocket, TTransportException

        trans = None
        try:
            conn.settimeout(FIRST_BYTES_TIMEOUT)
            try:
                first = _peek(conn, 5)
            except (socket.timeout, OSError):
                return
            conn.settimeout(None)
            if not first:
                return
            kind = detect(first)
            if kind is None:
                logger.warning("closing %s:%s: first bytes %r are neither binary nor compact Thrift "
                               "(buffered or framed)", addr[0], addr[1], first)
                return
            protocol, transport = kind
            raw = TSocket(sock=conn)
            trans = (TCyFramedTransport if transport == "framed" else TCyBufferedTransport)(raw)
            proto = TCyBinaryProtocol(trans) if protocol == "binary" else TCompactProtocol(trans)
            logger.debug("connection %d from %s:%s speaks %s/%s", cid, addr[0], addr[1], protocol, transport)
            opened = getattr(self.handler, "connection_opened", None)
            if opened:
                opened(cid)
            while not self._stopping.is_set():
                processor.process(proto, proto)
        except TTransportException:
            pass  # the client closed its connection
        except (ConnectionError, OSError):
            pass
        except Exception:
            # Undecodable input leaves the stream out of step: this connection ends, the server goes on.
            logger.exception("connection %d from %s:%s ended by a protocol error", cid, addr[0], addr[1])
        finally:
            closed = getattr(self.handler, "connection_closed", None)
            if closed:
                try:
                    closed(cid)
                except Exception:
                    logger.exception("cleanup of connection %d failed", cid)
            with self._lock:
                self._conns.pop(cid, None)
                self._threads.pop(cid, None)
            try:
                conn.close()
            except OSError:
                pass

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every connection (requests in flight finish first), wait for the threads."""
        self._stopping.set()
        with self._lock:
            conns = list(self._conns.values())
            threads = list(self._threads.values())
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout)


def make_server(db: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
    """(server, store): the Hbase handler over a Store on ``db``, listening (not yet serving)."""
    from hbase_emulator.thrift_service import HbaseHandler, SafeHandler
    from hbase_emulator.thrift_store import Store

    store = Store(db)
    try:
        handler = HbaseHandler(store, host=host, port=port)
        server = ThriftServer(SafeHandler(handler), host, port)
        handler.port = server.port
    except BaseException:
        store.close()
        raise
    return server, store


def parse_gc_thresholds(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"GC thresholds must be three positive ints like 20000,50,100, got {text!r}")
    return values


def tune_gc(thresholds: str) -> None:
    """Collect less often, and keep what the server holds from start (modules, store) out of every scan."""
    values = parse_gc_thresholds(thresholds)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*values)


@click.command()
@click.option("--host", default=lambda: os.environ.get("HBASE_SERVER_HOST", DEFAULT_HOST), show_default=DEFAULT_HOST,
              help="Address to listen on [HBASE_SERVER_HOST].")
@click.option("--port", type=click.IntRange(0, 65535),
              default=lambda: int(os.environ.get("HBASE_SERVER_PORT", DEFAULT_PORT)), show_default=DEFAULT_PORT,
              help="TCP port [HBASE_SERVER_PORT].")
@click.option("--db", default=lambda: os.environ.get("HBASE_SERVER_DB", DEFAULT_DB), show_default=DEFAULT_DB,
              help="SQLite file (created if missing) or :memory: [HBASE_SERVER_DB].")
@click.option("--gc-thresholds", default=lambda: os.environ.get("HBASE_SERVER_GC_THRESHOLDS", DEFAULT_GC_THRESHOLDS),
              show_default=DEFAULT_GC_THRESHOLDS, help="gc.set_threshold gen0,gen1,gen2 [HBASE_SERVER_GC_THRESHOLDS].")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(host: str, port: int, db: str, gc_thresholds: str, log_level: str) -> None:
    """Serve HBase's Thrift (v1) API from a SQLite file (binary/compact protocol, buffered/framed transport)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        parse_gc_thresholds(gc_thresholds)
        server, store = make_server(db, host, port)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    def on_signal(signum, frame):
        logger.info("received %s, stopping", signal.Signals(signum).name)
        server._stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info("HBase Thrift server listening on %s:%d (db %s; binary|compact protocol, buffered|framed transport)",
                host, server.port, db)
    tune_gc(gc_thresholds)
    try:
        server.serve_forever()
    finally:
        server.stop()
        store.close()
        logger.info("HBase Thrift server stopped")


if __name__ == "__main__":
    main()
