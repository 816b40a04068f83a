"""Embedded HBase server speed: happybase batch writes and full scans, side by side with a NULL Thrift handler."""

from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import figure, write_result

logger = logging.getLogger(__name__)

DEFAULT_ROWS = 100_000          # BENCH_HBASE_ROWS
DEFAULT_QUICK_ROWS = 20_000
DEFAULT_REPEATS = 5
DEFAULT_QUICK_REPEATS = 3
BATCH_SIZE = 3_000              # happybase batch(batch_size=...) counts cells
SCAN_BATCH = 1_000              # happybase scan(batch_size=...) default
VALUE_BYTES = 32
WRITE_TARGET = 20_000           # rows/s (issue 2)
SCAN_TARGET = 40_000            # rows/s (issue 2)
COLUMNS = (b"cf:a", b"cf:b", b"cf:c")


# -- the NULL reference: same server loop and wire, no storage ---------------------------
class NullHandler:
    """Accepts and discards writes; scans return the same number of synthetic rows, built once."""

    def __init__(self, rows: int):
        from hbase_emulator.thrift_service import Hbase_thrift, row_result

        self.tables: set[bytes] = set()
        self.rows = rows
        value = bytes(VALUE_BYTES)
        self.results = [row_result(b"%016x" % i, [(c, 1, value) for c in COLUMNS], False) for i in range(rows)]
        self.scanners: dict[int, int] = {}
        self.descriptor = {b"cf:": Hbase_thrift.ColumnDescriptor(name=b"cf:")}

    def getTableNames(self):
        return sorted(self.tables)

    def createTable(self, name, families):
        self.tables.add(name)

    def isTableEnabled(self, name):
        return True

    def disableTable(self, name):
        pass

    def deleteTable(self, name):
        self.tables.discard(name)

    def getColumnDescriptors(self, name):
        return self.descriptor

    def mutateRows(self, name, batches, attributes):
        pass

    def scannerOpenWithScan(self, name, scan, attributes):
        sid = len(self.scanners) + 1
        self.scanners[sid] = 0
        return sid

    def scannerGetList(self, sid, n):
        pos = self.scanners[sid]
        self.scanners[sid] = pos + n
        return self.results[pos:pos + n]

    def scannerClose(self, sid):
        self.scanners.pop(sid, None)


def serve_null(port: int, rows: int) -> None:
    from hbase_emulator.server import ThriftServer

    server = ThriftServer(NullHandler(rows), "127.0.0.1", port)
    print("ready", flush=True)
    server.serve_forever()


# -- measurements ---------------------------------------------------------------------------
def make_rows(n: int, seed: int = 7) -> list[tuple[bytes, dict]]:
    rnd = random.Random(seed)
    pool = [rnd.randbytes(VALUE_BYTES) for _ in range(1024)]
    return [(b"%04x:%020d" % (rnd.getrandbits(16), i), {c: pool[(i * 3 + j) % 1024] for j, c in enumerate(COLUMNS)})
            for i in range(n)]


def write_rows(conn, table_name: str, rows) -> float:
    if table_name.encode() in conn.tables():
        conn.delete_table(table_name, disable=True)
    conn.create_table(table_name, {"cf": {"max_versions": 1}})
    table = conn.table(table_name)
    start = time.perf_counter()
    with table.batch(batch_size=BATCH_SIZE) as batch:
        for key, data in rows:
            batch.put(key, data)
    return len(rows) / (time.perf_counter() - start)


def scan_rows(conn, table_name: str, expected: int) -> float:
    table = conn.table(table_name)
    start = time.perf_counter()
    count = sum(1 for _ in table.scan(batch_size=SCAN_BATCH))
    took = time.perf_counter() - start
    if count != expected:
        raise RuntimeError(f"scan of {table_name} returned {count} rows, expected {expected}")
    return count / took


def wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    from deploy.services import port_open

    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {host}:{port}")
        time.sleep(0.05)


def run(rows: int, repeats: int) -> list[dict]:
    import happybase

    from deploy.services import HBaseServer, free_port

    data = make_rows(rows)
    results = {k: [] for k in ("write", "scan", "null_write", "null_scan")}
    with tempfile.TemporaryDirectory(prefix="bench-hbase-") as tmp:
        real = HBaseServer(run_dir=tmp, port=free_port())
        null_port = free_port()
        null = subprocess.Popen([sys.executable, "-m", "bench.hbase_server", "--serve-null", str(null_port),
                                 "--rows", str(rows)], cwd=Path(__file__).resolve().parent.parent,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            real.start()
            wait_port("127.0.0.1", null_port)
            real_conn = happybase.Connection(real.host, real.port, timeout=120_000)
            null_conn = happybase.Connection("127.0.0.1", null_port, timeout=120_000)
            for r in range(repeats):
                name = f"bench{r}"
                results["write"].append(write_rows(real_conn, name, data))
                results["null_write"].append(write_rows(null_conn, name, data))
                results["scan"].append(scan_rows(real_conn, name, rows))
                results["null_scan"].append(scan_rows(null_conn, name, rows))
                print(f"  repeat {r + 1}/{repeats}: write {results['write'][-1]:,.0f} rows/s "
                      f"(null {results['null_write'][-1]:,.0f}), scan {results['scan'][-1]:,.0f} rows/s "
                      f"(null {results['null_scan'][-1]:,.0f})", file=sys.stderr)
            db_bytes = sum(f.stat().st_size for f in Path(tmp).glob("hbase.sqlite*"))
            real_conn.close()
            null_conn.close()
        finally:
            real.stop()
            null.terminate()
            null.wait(10)
    print(f"  database size after {repeats} tables of {rows:,} rows: {db_bytes / 1e6:,.1f} MB", file=sys.stderr)
    return [
        figure("batch write, 3 x 32-byte cells per row, batch_size=3000", results["write"], "rows/s",
               reference="NULL handler", reference_values=results["null_write"], target=WRITE_TARGET),
        figure("full scan, batch_size=1000", results["scan"], "rows/s",
               reference="NULL handler", reference_values=results["null_scan"], target=SCAN_TARGET),
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rows and repeats")
    parser.add_argument("--rows", type=int, default=None, help="rows per repeat [BENCH_HBASE_ROWS]")
    parser.add_argument("--serve-null", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_null:
        serve_null(args.serve_null, args.rows or DEFAULT_ROWS)
        return
    rows = args.rows or int(os.environ.get("BENCH_HBASE_ROWS", DEFAULT_QUICK_ROWS if args.quick else DEFAULT_ROWS))
    if rows < 1:
        raise SystemExit("--rows must be >= 1")
    repeats = DEFAULT_QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    print(f"hbase_server: {rows:,} rows x {repeats} repeats, binary protocol, buffered transport, "
          f"file-backed SQLite", file=sys.stderr)
    figures = run(rows, repeats)
    write_result("hbase_server", figures, quick=args.quick,
                 extra={"rows": rows, "repeats": repeats, "protocol": "binary", "transport": "buffered"})


if __name__ == "__main__":
    main()
