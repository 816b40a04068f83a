"""The embedded HBase Thrift server against happybase: data model, scans, timestamps, counters, admin, errors, concurrency."""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections import OrderedDict

import happybase
import pytest
from thriftpy2.transport import TTransportException

from deploy.services import HBaseServer, free_port

COMBOS = [("binary", "buffered"), ("binary", "framed"), ("compact", "buffered"), ("compact", "framed")]
FAMILIES = (b"cf1", b"cf2")


@pytest.fixture(scope="module")
def thrift_server(tmp_path_factory):
    """A real server process (python -m hbase_emulator.server) on a SQLite file, for this module."""
    svc = HBaseServer(run_dir=tmp_path_factory.mktemp("thrift"), port=free_port())
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def thrift_connect(thrift_server):
    """connect(protocol=..., transport=...) -> an open happybase connection, closed after the test."""
    conns = []

    def connect(protocol="binary", transport="buffered", **kwargs):
        conn = happybase.Connection(thrift_server.host, thrift_server.port, protocol=protocol,
                                    transport=transport, timeout=20_000, **kwargs)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


@pytest.fixture
def thrift_table(thrift_connect):
    """make(conn=None, families=None) -> a fresh table with a unique name (families cf1, cf2 by default)."""
    def make(conn=None, families=None):
        conn = conn or thrift_connect()
        name = "t" + uuid.uuid4().hex[:12]
        conn.create_table(name, families or {"cf1": {}, "cf2": {"max_versions": 1}})
        return conn.table(name)

    return make


# -- helpers ---------------------------------------------------------------------------------
def random_bytes(rnd: random.Random, low: int, high: int) -> bytes:
    """Bytes that lean on the awkward ones: NUL, 0xff, 0x80, ':' and invalid UTF-8 sequences."""
    pieces = [b"\x00", b"\xff", b"\x80", b":", b"\xc3\x28", b"\xed\xa0\x80", b"a", b"z", b"\x01", b"\xfe"]
    out = b""
    length = rnd.randint(low, high)
    while len(out) < length:
        out += rnd.choice(pieces) if rnd.random() < 0.5 else bytes([rnd.randrange(256)])
    return out[:length] if length else b""


def hbase_order(column: bytes) -> tuple[bytes, bytes]:
    fam, _, qual = column.partition(b":")
    return fam, qual


def expected_scan(model: dict, start=None, stop=None, columns=None, reverse=False):
    keys = sorted(model, reverse=reverse)
    out = []
    for key in keys:
        if reverse:
            if start is not None and key > start or stop is not None and key <= stop:
                continue
        elif start is not None and key < start or stop is not None and key >= stop:
            continue
        data = select(model[key], columns)
        if data:
            out.append((key, data))
    return out


def select(row: dict, columns) -> dict:
    if not columns:
        return dict(row)
    out = {}
    for col, value in row.items():
        fam = col.partition(b":")[0]
        if fam in columns or col in columns:
            out[col] = value
    return out


# -- the data model, random binary keys and values, every protocol/transport ------------------------
@pytest.mark.parametrize("protocol,transport", COMBOS, ids=[f"{p}-{t}" for p, t in COMBOS])
def test_random_binary_data_matches_a_python_model(thrift_connect, thrift_table, protocol, transport):
    conn = thrift_connect(protocol, transport)
    table = thrift_table(conn)
    rnd = random.Random(f"{protocol}-{transport}")
    model: dict[bytes, dict[bytes, bytes]] = {}
    keys = list({random_bytes(rnd, 1, 12) for _ in range(120)} | {b"\x00", b"\xff", b"\xff\xff", b"\x00\x00"})
    quals = [b"", b"\x00", b"\xff", b"a:b", b"\xc3\x28"] + [random_bytes(rnd, 1, 6) for _ in range(6)]

    for round_no in range(3):
        with table.batch(batch_size=37) as batch:  # several mutateRows calls per round
            for _ in range(200):
                key = rnd.choice(keys)
                data = {rnd.choice(FAMILIES) + b":" + rnd.choice(quals): random_bytes(rnd, 0, 40)
                        for _ in range(rnd.randint(1, 4))}
                batch.put(key, data)
                model.setdefault(key, {}).update(data)
        for _ in range(25):
            key = rnd.choice(sorted(model))
            kind = rnd.random()
            if kind < 0.3:
                table.delete(key)
                model.pop(key, None)
            elif kind < 0.6:
                fam = rnd.choice(FAMILIES)
                table.delete(key, columns=[fam])
                model[key] = {c: v for c, v in model[key].items() if not c.startswith(fam + b":")}
            else:
                cols = rnd.sample(sorted(model[key]), min(2, len(model[key]))) if model[key] else []
                table.delete(key, columns=cols)
                for c in cols:
                    model[key].pop(c, None)
            if key in model and not model[key]:
                del model[key]

        assert list(table.scan()) == expected_scan(model), f"full scan differs after round {round_no}"

    for key in rnd.sample(keys, 30):
        assert table.row(key) == model.get(key, {})
        cols = [b"cf1", b"cf2:" + quals[0], b"cf2:\xff"]
        assert table.row(key, columns=cols) == select(model.get(key, {}), cols)
    wanted = rnd.sample(keys, 20) + [b"no such row"]
    assert table.rows(wanted) == [(k, model[k]) for k in wanted if k in model]
    assert table.rows(wanted, columns=[b"cf2"]) == [(k, select(model[k], [b"cf2"])) for k in wanted
                                                  if select(model.get(k, {}), [b"cf2"])]
    for row_key, data in table.scan(sorted_columns=True):
        assert isinstance(data, OrderedDict)
        assert list(data) == sorted(data, key=hbase_order)
        assert dict(data) == model[row_key]


def test_scan_options(thrift_table):
    table = thrift_table()
    model = {}
    with table.batch() as batch:
        for i in range(60):
            key = bytes([i // 10 * 0x33, i % 10]) + (b"\xff" if i % 7 == 0 else b"")
            data = {b"cf1:a": b"%d" % i, b"cf1:b": b"x" * (i % 5), b"cf2:c": bytes([i])}
            batch.put(key, data)
            model[key] = data
    keys = sorted(model)

    assert list(table.scan()) == expected_scan(model)
    start, stop = keys[7], keys[41]
    assert list(table.scan(row_start=start, row_stop=stop)) == expected_scan(model, start, stop)
    assert list(table.scan(row_start=start)) == expected_scan(model, start)
    assert list(table.scan(row_stop=stop)) == expected_scan(model, None, stop)
    assert list(table.scan(row_start=b"\x00\x05\x00", row_stop=b"\x33")) == expected_scan(
        model, b"\x00\x05\x00", b"\x33")
    # row_prefix: happybase computes the stop row (bytes_increment), including for a prefix ending in 0xff
    assert list(table.scan(row_prefix=b"\x33")) == [(k, v) for k, v in expected_scan(model) if k.startswith(b"\x33")]
    assert list(table.scan(row_prefix=b"\xff")) == [(k, v) for k, v in expected_scan(model) if k.startswith(b"\xff")]
    assert list(table.scan(row_prefix=b"\x66\x07")) == [(k, v) for k, v in expected_scan(model)
                                                       if k.startswith(b"\x66\x07")]
    assert list(table.scan(row_prefix=b"\x66", reverse=True)) == [
        (k, v) for k, v in expected_scan(model, reverse=True) if k.startswith(b"\x66")]
    # columns: families and single columns
    for cols in ([b"cf1"], [b"cf2"], [b"cf1:b", b"cf2"], [b"cf1:a"], [b"cf1:zz"]):
        assert list(table.scan(columns=cols)) == expected_scan(model, columns=cols), cols
    # limit and batch_size (scanner paging) in every mix
    for limit in (1, 7, 60, 100):
        for batch_size in (1, 3, 1000):
            got = list(table.scan(limit=limit, batch_size=batch_size))
            assert got == expected_scan(model)[:limit], (limit, batch_size)
    # reverse, with and without a range (start is inclusive, stop exclusive, start > stop)
    assert list(table.scan(reverse=True)) == expected_scan(model, reverse=True)
    assert list(table.scan(row_start=stop, row_stop=start, reverse=True)) == expected_scan(
        model, stop, start, reverse=True)
    assert list(table.scan(reverse=True, limit=5, batch_size=2)) == expected_scan(model, reverse=True)[:5]
    # scan_batching splits rows into partial rows of at most N cells, in column order
    parts = list(table.scan(scan_batching=2, row_stop=keys[3]))
    assert [k for k, _ in parts] == [keys[0], keys[0], keys[1], keys[1], keys[2], keys[2]]
    assert parts[0][1] == {b"cf1:a": model[keys[0]][b"cf1:a"], b"cf1:b": model[keys[0]][b"cf1:b"]}
    assert parts[1][1] == {b"cf2:c": model[keys[0]][b"cf2:c"]}
    # sorted columns and timestamps
    for key, data in table.scan(sorted_columns=True, include_timestamp=True, limit=5):
        assert list(data) == [b"cf1:a", b"cf1:b", b"cf2:c"]
        assert all(isinstance(ts, int) and ts > 1_600_000_000_000 for _, ts in data.values())
    assert list(table.scan(row_start=b"\xff\xff\xff")) == []


def test_timestamps_and_time_ranges(thrift_table):
    table = thrift_table()
    before = int(time.time() * 1000)
    table.put(b"r", {b"cf1:now": b"v"})
    after = int(time.time() * 1000)
    value, ts = table.row(b"r", include_timestamp=True)[b"cf1:now"]
    assert before <= ts <= after + 1, "server-assigned timestamps are wall-clock milliseconds"

    table.put(b"r", {b"cf1:a": b"old"}, timestamp=100)
    table.put(b"r", {b"cf1:b": b"mid"}, timestamp=200)
    table.put(b"r", {b"cf2:c": b"new"}, timestamp=300)
    # a read with timestamp T returns the cells with ts < T
    assert table.row(b"r", timestamp=200) == {b"cf1:a": b"old"}
    assert table.row(b"r", timestamp=201, include_timestamp=True) == {b"cf1:a": (b"old", 100),
                                                                      b"cf1:b": (b"mid", 200)}
    assert table.row(b"r", columns=[b"cf2"], timestamp=301) == {b"cf2:c": b"new"}
    assert table.rows([b"r", b"nope"], timestamp=101) == [(b"r", {b"cf1:a": b"old"})]
    assert list(table.scan(timestamp=250)) == [(b"r", {b"cf1:a": b"old", b"cf1:b": b"mid"})]
    assert table.cells(b"r", b"cf1:a", include_timestamp=True) == [(b"old", 100)]
    assert table.cells(b"r", b"cf1:a", versions=1, timestamp=100) == []
    assert table.cells(b"r", b"cf2:c", timestamp=301) == [b"new"]
    # one version per cell: an older explicit timestamp does not replace a newer cell
    table.put(b"r", {b"cf1:b": b"older"}, timestamp=150)
    assert table.row(b"r", include_timestamp=True)[b"cf1:b"] == (b"mid", 200)
    table.put(b"r", {b"cf1:b": b"same ts, later write"}, timestamp=200)
    assert table.row(b"r")[b"cf1:b"] == b"same ts, later write"
    # a delete with timestamp T removes the cells with ts <= T only
    table.delete(b"r", columns=[b"cf1"], timestamp=150)
    assert table.row(b"r", columns=[b"cf1"], include_timestamp=True) == {
        b"cf1:b": (b"same ts, later write", 200), b"cf1:now": (b"v", ts)}
    # batch-wide timestamps go through mutateRowsTs
    with table.batch(timestamp=5000) as batch:
        batch.put(b"s", {b"cf1:x": b"1"})
        batch.put(b"t", {b"cf1:x": b"2"})
    assert table.row(b"t", include_timestamp=True) == {b"cf1:x": (b"2", 5000)}


def test_deletes_follow_hbase_order(thrift_table):
    table = thrift_table()
    table.put(b"row", {b"cf1:a": b"1", b"cf1:b": b"2", b"cf2:c": b"3", b"cf2:": b"empty qualifier"})
    assert table.row(b"row", columns=[b"cf2:"]) == {b"cf2:": b"empty qualifier"}
    table.delete(b"row", columns=[b"cf1:a"])
    assert table.row(b"row") == {b"cf1:b": b"2", b"cf2:c": b"3", b"cf2:": b"empty qualifier"}
    table.delete(b"row", columns=[b"cf2:"])
    assert table.row(b"row") == {b"cf1:b": b"2", b"cf2:c": b"3"}
    table.delete(b"row", columns=[b"cf2"])
    assert table.row(b"row") == {b"cf1:b": b"2"}
    table.delete(b"row")
    assert table.row(b"row") == {}
    assert list(table.scan()) == []
    # within one mutateRows call HBase applies every put, then every delete: the delete wins
    with table.batch() as batch:
        batch.delete(b"x", columns=[b"cf1:a"])
        batch.put(b"x", {b"cf1:a": b"gone", b"cf1:b": b"kept"})
    assert table.row(b"x") == {b"cf1:b": b"kept"}
    table.delete(b"never written")
    assert table.row(b"never written") == {}


def test_counters(thrift_table, thrift_server):
    table = thrift_table()
    assert table.counter_get(b"c", b"cf1:n") == 0
    assert table.row(b"c") == {b"cf1:n": struct.pack(">q", 0)}, "counter_get initialises the cell"
    assert table.counter_inc(b"c", b"cf1:n") == 1
    assert table.counter_inc(b"c", b"cf1:n", value=41) == 42
    assert table.counter_dec(b"c", b"cf1:n", value=50) == -8
    assert table.row(b"c")[b"cf1:n"] == struct.pack(">q", -8)
    table.counter_set(b"c", b"cf2:m", 2**62)
    assert table.counter_inc(b"c", b"cf2:m", 2**62) == -(2**63), "Java long arithmetic wraps"
    table.put(b"c", {b"cf1:text": b"not a long"})
    with pytest.raises(Exception) as err:
        table.counter_inc(b"c", b"cf1:text")
    assert type(err.value).__name__ == "IOError" and b"not a long" in err.value.message

    pool = happybase.ConnectionPool(size=8, host=thrift_server.host, port=thrift_server.port)

    def bump():
        for _ in range(50):
            with pool.connection() as conn:
                conn.table(table.name).counter_inc(b"shared", b"cf1:n")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert table.counter_get(b"shared", b"cf1:n") == 400


def test_table_administration(thrift_connect):
    conn = thrift_connect()
    name = "adm" + uuid.uuid4().hex[:8]
    conn.create_table(name, {"f1": dict(max_versions=1, compression="GZ", in_memory=True,
                                        bloom_filter_type="ROW", block_cache_enabled=True),
                             "f2": dict()})
    assert name.encode() in conn.tables()
    assert conn.tables() == sorted(conn.tables())
    fams = conn.table(name).families()
    assert set(fams) == {b"f1", b"f2"}
    assert fams[b"f1"]["max_versions"] == 1 and fams[b"f1"]["compression"] == b"GZ"
    assert fams[b"f1"]["in_memory"] is True and fams[b"f1"]["bloom_filter_type"] == b"ROW"
    assert fams[b"f2"]["max_versions"] == 3 and fams[b"f2"]["time_to_live"] == 2**31 - 1
    regions = conn.table(name).regions()
    assert len(regions) == 1 and regions[0]["start_key"] == b"" and regions[0]["end_key"] == b""
    conn.compact_table(name)
    conn.compact_table(name, major=True)

    with pytest.raises(Exception) as err:
        conn.create_table(name, {"f1": {}})
    assert type(err.value).__name__ == "AlreadyExists"

    assert conn.is_table_enabled(name) is True
    conn.disable_table(name)
    assert conn.is_table_enabled(name) is False
    with pytest.raises(Exception) as err:
        conn.table(name).row(b"r")
    assert type(err.value).__name__ == "IOError" and b"disabled" in err.value.message
    conn.enable_table(name)
    conn.table(name).put(b"r", {b"f1:q": b"v"})
    with pytest.raises(Exception) as err:
        conn.delete_table(name)  # HBase refuses to delete an enabled table
    assert type(err.value).__name__ == "IOError" and b"disabled" in err.value.message
    conn.delete_table(name, disable=True)
    assert name.encode() not in conn.tables()
    with pytest.raises(Exception) as err:
        conn.table(name).row(b"r")
    assert b"TableNotFound" in err.value.message

    # the table name can be reused and starts empty
    conn.create_table(name, {"f1": {}})
    assert conn.table(name).row(b"r") == {}
    conn.delete_table(name, disable=True)


@pytest.mark.parametrize("protocol,transport", COMBOS, ids=[f"{p}-{t}" for p, t in COMBOS])
def test_bad_requests_get_ioerror_and_the_connection_stays_usable(thrift_connect, thrift_table, protocol, transport):
    conn = thrift_connect(protocol, transport)
    table = thrift_table(conn)
    table.put(b"ok", {b"cf1:a": b"1"})
    missing = conn.table("no_such_table_" + uuid.uuid4().hex[:6])
    bad_calls = {
        "missing table get": lambda: missing.row(b"r"),
        "missing table put": lambda: missing.put(b"r", {b"cf1:a": b"1"}),
        "missing table scan": lambda: list(missing.scan()),
        "unknown family put": lambda: table.put(b"r", {b"nope:a": b"1"}),
        "unknown family get": lambda: table.row(b"ok", columns=[b"nope:a"]),
        "empty row key": lambda: table.put(b"", {b"cf1:a": b"1"}),
        "bad filter syntax": lambda: list(table.scan(filter="ValueFilter(=, 'binary:1'")),
        "unknown filter": lambda: list(table.scan(filter="NoSuchFilter('x')")),
        "substring with <": lambda: list(table.scan(filter="ValueFilter(<, 'substring:x')")),
        "ttl": lambda: conn.create_table("ttl" + uuid.uuid4().hex[:6], {"f": {"time_to_live": 60}}),
        "bad table name": lambda: conn.create_table("bad name!", {"f": {}}),
        "unknown scanner": lambda: conn.client.scannerGetList(987654, 10),
        "close unknown scanner": lambda: conn.client.scannerClose(987654),
        "not supported": lambda: conn.client.checkAndPut(table.name, b"ok", b"cf1:a", b"1", None, {}),
        "increment a short cell": lambda: table.counter_inc(b"ok", b"cf1:a"),
        "disable twice": lambda: conn.disable_table("no_such_table_x"),
    }
    for what, call in bad_calls.items():
        with pytest.raises(Exception) as err:
            call()
        assert type(err.value).__name__ in ("IOError", "IllegalArgument"), (what, err.value)
        assert err.value.message, what
        assert table.row(b"ok") == {b"cf1:a": b"1"}, f"connection unusable after {what}"


def test_idle_client_is_not_dropped(thrift_connect, thrift_table):
    conn = thrift_connect()
    table = thrift_table(conn)
    table.put(b"r", {b"cf1:a": b"1"})
    time.sleep(3.5)  # thriftpy2's stock server drops clients idle for 3 s
    assert table.row(b"r") == {b"cf1:a": b"1"}


def test_connection_pool_from_8_threads(thrift_server, thrift_table):
    table = thrift_table()
    pool = happybase.ConnectionPool(size=8, host=thrift_server.host, port=thrift_server.port)
    errors = []

    def work(worker: int):
        try:
            rnd = random.Random(worker)
            mine = {}
            for i in range(60):
                key = b"w%d-%03d" % (worker, i)
                data = {b"cf1:v": random_bytes(rnd, 0, 30), b"cf2:w": b"%d" % i}
                with pool.connection() as conn:
                    t = conn.table(table.name)
                    if i % 3 == 0:
                        with t.batch() as batch:
                            batch.put(key, data)
                    else:
                        t.put(key, data)
                    mine[key] = data
                    if i % 10 == 9:
                        assert dict(t.scan(row_prefix=b"w%d-" % worker)) == mine
                        assert t.row(key) == data
                    t.counter_inc(b"hits", b"cf1:n")
        except Exception as exc:  # reported below: a thread's assertion must fail the test
            errors.append((worker, repr(exc)))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sum(1 for _ in table.scan(row_prefix=b"w")) == 8 * 60
    assert table.counter_get(b"hits", b"cf1:n") == 8 * 60


def test_garbage_is_refused_and_the_server_goes_on(thrift_server, thrift_connect):
    with socket.create_connection((thrift_server.host, thrift_server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:  # closed with our bytes unread: an orderly close or a reset, never an answer
            assert sock.recv(100) == b"", "the server closes a connection that does not speak Thrift"
        except ConnectionResetError:
            pass
    with socket.create_connection((thrift_server.host, thrift_server.port), timeout=5) as sock:
        sock.sendall(b"\x80\x01\x00\x01\x00\x00\x00\x03xyz")  # a cut-off binary message
    assert thrift_connect().tables() is not None


def test_second_server_on_the_same_port_fails_loudly(thrift_server, tmp_path):
    from hbase_emulator.server import make_server

    with pytest.raises(OSError, match="cannot listen"):
        make_server(str(tmp_path / "other.sqlite"), thrift_server.host, thrift_server.port)
    clash = HBaseServer(run_dir=tmp_path, port=thrift_server.port)
    proc = subprocess.run(clash.command(), env=clash.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "cannot listen" in proc.stderr


def test_bad_gc_thresholds_are_refused_before_listening(tmp_path):
    from hbase_emulator.server import parse_gc_thresholds

    assert parse_gc_thresholds("20000,50,100") == (20000, 50, 100)
    svc = HBaseServer(run_dir=tmp_path, port=free_port())
    env = dict(svc.env(), HBASE_SERVER_GC_THRESHOLDS="700,x,10")
    proc = subprocess.run(svc.command(), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "GC thresholds must be three positive ints" in proc.stderr


def test_data_survives_restart_and_kill(tmp_path):
    svc = HBaseServer(run_dir=tmp_path, port=free_port())
    svc.start()
    try:
        conn = happybase.Connection(svc.host, svc.port)
        conn.create_table("keep", {"cf": {"max_versions": 1}})
        table = conn.table("keep")
        data = {bytes([i, 0, 255]): {b"cf:v": bytes([255 - i]) * 3} for i in range(200)}
        with table.batch(batch_size=100) as batch:
            for key, value in data.items():
                batch.put(key, value)
        conn.close()
        svc.stop()  # SIGTERM: a clean stop
        assert not svc.is_running()

        svc.start()
        conn = happybase.Connection(svc.host, svc.port)
        table = conn.table("keep")
        assert dict(table.scan()) == data
        assert table.families()[b"cf"]["max_versions"] == 1
        table.put(b"after", {b"cf:v": b"committed"})
        conn.close()
        svc.kill()  # SIGKILL: committed calls survive (WAL)
        svc.stop()

        svc.start()
        conn = happybase.Connection(svc.host, svc.port)
        assert conn.table("keep").row(b"after") == {b"cf:v": b"committed"}
        assert sum(1 for _ in conn.table("keep").scan()) == 201
        conn.close()
    finally:
        svc.stop()
    log = svc.log_file.read_text()
    assert "listening on" in log
    assert "received SIGTERM, stopping" in log and "HBase Thrift server stopped" in log


def test_in_memory_database(tmp_path):
    from hbase_emulator.server import make_server

    server, store = make_server(":memory:", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = happybase.Connection("127.0.0.1", server.port, protocol="compact", transport="framed")
        conn.create_table("m", {"cf": {}})
        conn.table("m").put(b"\x00", {b"cf:a": b"\xff"})
        assert list(conn.table("m").scan()) == [(b"\x00", {b"cf:a": b"\xff"})]
        conn.close()
    finally:
        server.stop()
        thread.join(5)
        store.close()
    assert not thread.is_alive()
    with pytest.raises(TTransportException):
        happybase.Connection("127.0.0.1", server.port).tables()
