"""The embedded HBase server's filter language through happybase scans, each filter against a plain-Python expectation."""

from __future__ import annotations

import struct
import uuid

import happybase
import pytest

from deploy.services import HBaseServer, free_port

# row -> (timestamp, cells)
DATA = {
    b"a1": (100, {b"cf1:name": b"alice", b"cf1:age": b"30", b"cf2:city": b"Paris", b"cf2:zip": b"75001"}),
    b"a2": (200, {b"cf1:name": b"albert", b"cf1:age": b"45", b"cf2:city": b"Lyon"}),
    b"b1": (300, {b"cf1:name": b"bob", b"cf2:city": b"paris", b"cf2:note": b"\xff\x00bin"}),
    b"b2": (100, {b"cf1:age": b"22", b"cf1:nick": b"bb", b"cf2:zip": b"69001"}),
    b"c1": (200, {b"cf1:name": b"carol", b"cf1:age": b"30", b"cf1:name2": b"x", b"cf2:city": b"Nice"}),
    b"it's": (300, {b"cf1:name": b"quote"}),
}


@pytest.fixture(scope="module")
def thrift_filter_table(tmp_path_factory):
    """A server process with one table holding DATA (explicit timestamps per row)."""
    svc = HBaseServer(run_dir=tmp_path_factory.mktemp("thrift-filters"), port=free_port())
    svc.start()
    conn = happybase.Connection(svc.host, svc.port, timeout=20_000)
    name = "f" + uuid.uuid4().hex[:10]
    conn.create_table(name, {"cf1": {}, "cf2": {}})
    table = conn.table(name)
    for row, (ts, cells) in DATA.items():
        table.put(row, cells, timestamp=ts)
    yield table
    conn.close()
    svc.stop()


def ordered(cells: dict) -> list[tuple[bytes, bytes]]:
    return sorted(cells.items(), key=lambda kv: kv[0].partition(b":")[::2])


def qual(col: bytes) -> bytes:
    return col.partition(b":")[2]


def expect(cell=lambda row, col, val: True, row=lambda r: True, value=lambda v: v, reverse=False):
    """Rows of DATA passing ``row``, with the cells passing ``cell``; rows left empty are not returned."""
    out = []
    for key in sorted(DATA, reverse=reverse):
        if not row(key):
            continue
        cells = {c: value(v) for c, v in ordered(DATA[key][1]) if cell(key, c, v)}
        if cells:
            out.append((key, cells))
    return out


def scan(table, flt, **kwargs):
    return list(table.scan(filter=flt, **kwargs))


CASES = {
    "KeyOnlyFilter()": expect(value=lambda v: b""),
    "KeyOnlyFilter(true)": expect(value=lambda v: struct.pack(">i", len(v))),
    "FirstKeyOnlyFilter()": [(k, dict(ordered(DATA[k][1])[:1])) for k in sorted(DATA)],
    "PrefixFilter('a')": expect(row=lambda r: r.startswith(b"a")),
    "PrefixFilter('it''s')": expect(row=lambda r: r == b"it's"),
    "ColumnPrefixFilter('na')": expect(cell=lambda r, c, v: qual(c).startswith(b"na")),
    "MultipleColumnPrefixFilter('age', 'zi')": expect(cell=lambda r, c, v: qual(c)[:3] in (b"age", b"zip")),
    "ColumnRangeFilter('age', true, 'name', false)": expect(cell=lambda r, c, v: b"age" <= qual(c) < b"name"),
    "ColumnRangeFilter('age', false, 'name', true)": expect(cell=lambda r, c, v: b"age" < qual(c) <= b"name"),
    "ColumnRangeFilter('', false, 'c', true)": expect(cell=lambda r, c, v: qual(c) <= b"c"),
    # HBase: the first N columns; once a row has more than N, filterAllRemaining() ends the scan
    "ColumnCountGetFilter(2)": [(b"a1", dict(ordered(DATA[b"a1"][1])[:2]))],
    "PageFilter(2)": expect()[:2],
    "InclusiveStopFilter('b1')": expect(row=lambda r: r <= b"b1"),
    "RowFilter(=, 'binary:b1')": expect(row=lambda r: r == b"b1"),
    "RowFilter(<, 'binary:b')": expect(row=lambda r: r < b"b"),
    "RowFilter(<=, 'binary:b1')": expect(row=lambda r: r <= b"b1"),
    "RowFilter(>, 'binary:b1')": expect(row=lambda r: r > b"b1"),
    "RowFilter(>=, 'binaryprefix:b')": expect(row=lambda r: r[:1] >= b"b"),
    "RowFilter(!=, 'substring:2')": expect(row=lambda r: b"2" not in r),
    "RowFilter(=, 'regexstring:^.1$')": expect(row=lambda r: len(r) == 2 and r.endswith(b"1")),
    "QualifierFilter(=, 'binary:city')": expect(cell=lambda r, c, v: qual(c) == b"city"),
    "QualifierFilter(>, 'binary:name')": expect(cell=lambda r, c, v: qual(c) > b"name"),
    "ValueFilter(=, 'substring:PARIS')": expect(cell=lambda r, c, v: b"paris" in v.lower()),
    "ValueFilter(=, 'regexstring:^[0-9]+$')": expect(cell=lambda r, c, v: v.isdigit()),
    "ValueFilter(!=, 'regexstring:[a-z]')": expect(cell=lambda r, c, v: not any(97 <= b <= 122 for b in v)),
    "ValueFilter(<, 'binary:b')": expect(cell=lambda r, c, v: v < b"b"),
    "ValueFilter(=, 'binaryprefix:\xff\x00')": expect(cell=lambda r, c, v: v.startswith(b"\xff\x00")),
    "FamilyFilter(=, 'binary:cf2')": expect(cell=lambda r, c, v: c.startswith(b"cf2:")),
    "FamilyFilter(!=, 'binary:cf2')": expect(cell=lambda r, c, v: not c.startswith(b"cf2:")),
    # not filterIfMissing: rows without the column pass
    "SingleColumnValueFilter('cf1', 'age', =, 'binary:30')": expect(
        row=lambda r: DATA[r][1].get(b"cf1:age", b"30") == b"30"),
    "SingleColumnValueFilter('cf1', 'age', =, 'binary:30', true, true)": expect(
        row=lambda r: DATA[r][1].get(b"cf1:age") == b"30"),
    "SingleColumnValueFilter('cf1', 'age', >, 'binary:25', true, true)": expect(
        row=lambda r: DATA[r][1].get(b"cf1:age", b"") > b"25"),
    "SingleColumnValueExcludeFilter('cf1', 'age', =, 'binary:30', true, true)": expect(
        row=lambda r: DATA[r][1].get(b"cf1:age") == b"30", cell=lambda r, c, v: c != b"cf1:age"),
    "TimestampsFilter(100, 300)": expect(row=lambda r: DATA[r][0] in (100, 300)),
    "TimestampsFilter(5)": [],
    "PrefixFilter('a') AND QualifierFilter(=, 'binary:name')": expect(
        row=lambda r: r.startswith(b"a"), cell=lambda r, c, v: qual(c) == b"name"),
    "RowFilter(=, 'binary:a1') OR ValueFilter(=, 'binary:bob')": expect(
        cell=lambda r, c, v: r == b"a1" or v == b"bob"),
    "SKIP ValueFilter(!=, 'binary:30')": expect(row=lambda r: b"30" not in DATA[r][1].values()),
    "WHILE RowFilter(!=, 'binary:b1')": expect(row=lambda r: r < b"b1"),
    "WHILE ValueFilter(!=, 'binary:bob')": expect(row=lambda r: r < b"b1"),
    "(PrefixFilter('a') OR PrefixFilter('c')) AND QualifierFilter(=, 'binary:age')": expect(
        row=lambda r: r[:1] in (b"a", b"c"), cell=lambda r, c, v: qual(c) == b"age"),
    "PrefixFilter('a') OR PrefixFilter('c') AND QualifierFilter(=, 'binary:age')": expect(
        cell=lambda r, c, v: r.startswith(b"a") or (r.startswith(b"c") and qual(c) == b"age")),
    "KeyOnlyFilter() AND FirstKeyOnlyFilter()": [(k, {ordered(DATA[k][1])[0][0]: b""}) for k in sorted(DATA)],
    "  ( ( FamilyFilter ( = , 'binary:cf1' ) ) )  ": expect(cell=lambda r, c, v: c.startswith(b"cf1:")),
}


@pytest.mark.parametrize("flt", list(CASES), ids=list(CASES))
def test_filter(thrift_filter_table, flt):
    expected = CASES[flt]
    assert scan(thrift_filter_table, flt.encode("latin-1")) == expected
    # the same through scanner pages of one row each
    assert scan(thrift_filter_table, flt.encode("latin-1"), batch_size=1) == expected


def test_filters_with_reverse_scans(thrift_filter_table):
    t = thrift_filter_table
    assert scan(t, "PrefixFilter('a')", reverse=True) == expect(row=lambda r: r.startswith(b"a"), reverse=True)
    assert scan(t, "PrefixFilter('b')", reverse=True) == expect(row=lambda r: r.startswith(b"b"), reverse=True)
    assert scan(t, "InclusiveStopFilter('b1')", reverse=True, row_start=b"c1") == expect(
        row=lambda r: b"b1" <= r <= b"c1", reverse=True)
    assert scan(t, "PageFilter(3)", reverse=True) == expect(reverse=True)[:3]


def test_filters_combine_with_scan_options(thrift_filter_table):
    t = thrift_filter_table
    assert scan(t, "PageFilter(2)", row_start=b"b") == expect(row=lambda r: r >= b"b")[:2]
    assert scan(t, "ValueFilter(=, 'regexstring:^[0-9]+$')", columns=[b"cf2"]) == expect(
        cell=lambda r, c, v: c.startswith(b"cf2:") and v.isdigit())
    assert scan(t, "QualifierFilter(!=, 'binary:name')", limit=2) == expect(
        cell=lambda r, c, v: qual(c) != b"name")[:2]
    assert scan(t, "FamilyFilter(=, 'binary:cf1')", timestamp=150) == expect(
        row=lambda r: DATA[r][0] < 150, cell=lambda r, c, v: c.startswith(b"cf1:"))
    sorted_rows = list(t.scan(filter="ColumnPrefixFilter('n')", sorted_columns=True))
    assert [(k, list(v.items())) for k, v in sorted_rows] == [
        (k, list(v.items())) for k, v in expect(cell=lambda r, c, v: qual(c).startswith(b"n"))]
    # scan batching with a cell-level filter splits the filtered row
    parts = list(t.scan(filter="FamilyFilter(=, 'binary:cf1')", scan_batching=1, row_stop=b"a2"))
    assert parts == [(b"a1", {b"cf1:age": b"30"}), (b"a1", {b"cf1:name": b"alice"})]


@pytest.mark.parametrize("flt", [
    "PageFilter(2)",                      # decides on whole rows: HBase refuses batching
    "SingleColumnValueFilter('cf1', 'age', =, 'binary:30')",
])
def test_row_filters_refuse_scan_batching(thrift_filter_table, flt):
    with pytest.raises(Exception) as err:
        list(thrift_filter_table.scan(filter=flt, scan_batching=1))
    assert type(err.value).__name__ == "IOError"
    assert thrift_filter_table.row(b"a1")[b"cf1:name"] == b"alice"


@pytest.mark.parametrize("flt", [
    "PrefixFilter(", "PrefixFilter('a'", "PrefixFilter('a') AND", "ValueFilter(=, 'nocomparator')",
    "ValueFilter(~, 'binary:a')", "PageFilter('x')", "ColumnRangeFilter('a', maybe, 'b', true)",
    "RowFilter(>, 'regexstring:a')", "ValueFilter(=, 'regexstring:(')", "DependentColumnFilter('cf1', 'x')",
    "PrefixFilter('a') PrefixFilter('b')", "", "KeyOnlyFilter(true, false, 1)",
])
def test_bad_filters_answer_ioerror(thrift_filter_table, flt):
    with pytest.raises(Exception) as err:
        list(thrift_filter_table.scan(filter=flt or b" "))
    assert type(err.value).__name__ == "IOError", err.value
    assert err.value.message
    assert thrift_filter_table.row(b"b1", columns=[b"cf1"]) == {b"cf1:name": b"bob"}
