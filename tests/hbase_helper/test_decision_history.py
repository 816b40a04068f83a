"""Decision history in HBase: every raw record kept in order, replays idempotent, the current one deterministic."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from hbase_helper import layout
from hbase_helper.audit import get_decision, scan_decisions

T0 = 1_717_243_200_000
_ids = itertools.count(1_000)


def _version(make, app_id: int, *, seq, offset: int, partition: int = 0, ts: int = T0, decided_at: int = T0,
             decision: str = "approve", created_at=None) -> dict:
    """One decision of ``app_id`` from the raw record at (partition, offset) with the producer's ``seq``."""
    d = make(app_id, decision=decision, raw_ts=ts, decided_at=decided_at)
    d["provenance"].update(seq=seq, offset=offset, partition=partition)
    if created_at is not None:
        d["provenance"]["created_at"] = created_at
    d["applicant"]["annual_inc"] = 20_000 + (seq or 0) % 1_000 * 1_000 + offset   # changed data in each version
    return d


def _plain(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in layout.STORE_FIELDS}


def _index_rows(conn, app_id: int) -> list[bytes]:
    return [k for k, _ in conn.table(layout.INDEX_TABLE).scan() if layout.parse_index_key(k)[2] == app_id]


def _expected_current(versions: list[dict]) -> dict:
    return max(versions, key=lambda d: layout.order_key(d["provenance"]))


def test_every_decision_is_kept_in_order_and_the_latest_seq_is_current(store_writer, store_conn, store_make_decision):
    make = store_make_decision
    v1 = _version(make, 5, seq=10, offset=100, ts=T0 + 900)             # newest Kafka time, oldest seq
    v2 = _version(make, 5, seq=11, offset=40, partition=3, ts=T0 + 10, decision="decline")   # another key
    v3 = _version(make, 5, seq=12, offset=7, ts=T0 + 20)
    for d in (v3, v1, v2):                  # newest first: the order of arrival does not matter
        store_writer.write([d])
    row = get_decision(store_conn, 5)
    assert _plain(row) == v3
    assert [_plain(h) for h in row["history"]] == [v1, v2, v3]
    assert [h["saved_at"] is not None for h in row["history"]] == [True] * 3
    assert store_writer.count_rows() == 1
    assert len(_index_rows(store_conn, 5)) == 3     # three application versions, three index rows
    # the scan shows the application once, at the time of its current version, with the current decision
    assert [(_plain(r), r["time_ms"]) for r in scan_decisions(store_conn, T0, T0 + 1000)] == [(v3, T0 + 20)]
    assert list(scan_decisions(store_conn, T0, T0 + 1000, decision="decline")) == []
    assert list(scan_decisions(store_conn, T0 + 800, T0 + 1000)) == []   # only an older version there


def test_a_replay_of_the_same_raw_record_adds_nothing(store_writer, store_conn, store_make_decision):
    first = _version(store_make_decision, 6, seq=3, offset=30, decided_at=T0 + 1)
    store_writer.write([first])
    replay = _version(store_make_decision, 6, seq=3, offset=30, decided_at=T0 + 99, decision="decline")
    store_writer.write([replay])
    store_writer.write([replay, replay])
    row = get_decision(store_conn, 6)
    assert len(row["history"]) == 1 and _plain(row) == replay
    assert len(_index_rows(store_conn, 6)) == 1


def test_a_page_published_again_gets_a_history_entry_but_no_second_index_row(store_writer, store_conn,
                                                                          store_make_decision):
    created = "2024-06-01T12:00:00.125Z"
    original = _version(store_make_decision, 7, seq=4, offset=10, ts=T0 + 5, created_at=created)
    again = _version(store_make_decision, 7, seq=4, offset=95, ts=T0 + 60_000, created_at=created)
    store_writer.write([again])
    store_writer.write([original])
    row = get_decision(store_conn, 7)
    assert [h["provenance"]["offset"] for h in row["history"]] == [10, 95]
    assert _plain(row) == again and row["time_ms"] == T0 + 125 and row["time_source"] == "created"
    assert _index_rows(store_conn, 7) == [layout.index_key(7, T0 + 125, b"s%020d" % 4)]
    assert [r["id"] for r in scan_decisions(store_conn, T0, T0 + 200)] == [7]


# Raw records of one application: (seq or None, offset, partition, Kafka time); a strategy draws a
# few, then writes them (and replays of some) in any order, in any grouping into write calls.
_record = st.tuples(st.one_of(st.none(), st.integers(0, 5), st.just(2**63 - 1)), st.integers(0, 60),
                    st.integers(0, 3), st.integers(0, 3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_record, min_size=1, max_size=5, unique_by=lambda r: (r[1], r[2])),
       data=st.data())
def test_the_current_decision_is_the_same_whatever_the_write_order(store_writer, store_conn, store_make_decision,
                                                                  records, data):
    app_id = next(_ids)
    versions = [_version(store_make_decision, app_id, seq=seq, offset=offset, partition=partition,
                         ts=T0 + 1000 * t, decision="decline" if i % 2 else "approve")
                for i, (seq, offset, partition, t) in enumerate(records)]
    replays = data.draw(st.lists(st.sampled_from(versions), max_size=4), label="replays")
    writes = data.draw(st.permutations(versions + replays), label="order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(writes) - 1)), max_size=3), label="calls"))
    for lo, hi in zip([0, *cuts], [*cuts, len(writes)]):
        if writes[lo:hi]:
            store_writer.write(writes[lo:hi])
    row = get_decision(store_conn, app_id)
    ordered = sorted(versions, key=lambda d: layout.order_key(d["provenance"]))
    assert [_plain(h) for h in row["history"]] == ordered      # one entry per raw record, in order
    assert _plain(row) == _expected_current(versions)
    keys = _index_rows(store_conn, app_id)
    assert len(keys) == len(set(keys)) == len({layout.encode_index_row(d)[0] for d in versions})
    scanned = [r for r in scan_decisions(store_conn, 0, layout.MAX_TIME_MS) if r["id"] == app_id]
    assert [_plain(r) for r in scanned] == [_expected_current(versions)]


def test_concurrent_writers_of_one_application_agree(store_writer, store_conn, store_make_decision):
    versions = [_version(store_make_decision, 8, seq=s, offset=100 - s, partition=s % 4, ts=T0 + 10 * (9 - s))
                for s in range(1, 9)]
    for round_ in range(3):
        barrier = threading.Barrier(len(versions))

        def write(d):
            barrier.wait()
            store_writer.write([d])

        threads = [threading.Thread(target=write, args=(d,)) for d in reversed(versions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        row = get_decision(store_conn, 8)
        assert _plain(row) == versions[-1]
        assert [_plain(h) for h in row["history"]] == versions
    assert len(_index_rows(store_conn, 8)) == len(versions)


def test_cli_get_shows_the_current_decision_and_the_history(audit_env, store_writer, store_make_decision):
    old = _version(store_make_decision, 9, seq=1, offset=1, decision="decline")
    new = _version(store_make_decision, 9, seq=2, offset=2)
    store_writer.write([new, old])
    result = subprocess.run([sys.executable, "-m", "hbase_helper.audit", "get", "9"], env=audit_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    row = orjson.loads(result.stdout)
    assert row["decision"] == "approve" and row["provenance"]["seq"] == 2
    assert [(h["decision"], h["provenance"]["seq"]) for h in row["history"]] == [("decline", 1), ("approve", 2)]
    assert _plain(row["history"][0]) == old


def test_a_layout_1_row_is_read_scanned_and_superseded_without_migration(store_writer, store_conn, store_make_decision):
    old = _version(store_make_decision, 11, seq=1, offset=1, ts=T0 + 5)
    legacy_index = layout.index_key(11, T0 + 5)
    store_conn.table(layout.MAIN_TABLE).put(layout.row_key(11), {
        b"a:applicant": orjson.dumps(old["applicant"]), b"d:decision": b"approve",
        b"d:result": orjson.dumps({k: old[k] for k in layout.RESULT_FIELDS}),
        b"m:meta": orjson.dumps({"id": 11, "provenance": old["provenance"], "ingested_at": old["ingested_at"],
                                 "decided_at": old["decided_at"], "saved_at": 3,
                                 "index_key": legacy_index.decode()})})
    store_conn.table(layout.INDEX_TABLE).put(legacy_index, {b"i:decision": b"approve"})
    assert _plain(get_decision(store_conn, 11)) == old
    assert [_plain(r) for r in scan_decisions(store_conn, T0, T0 + 100)] == [old]
    new = _version(store_make_decision, 11, seq=2, offset=2, ts=T0 + 50, decision="decline")
    store_writer.write([new])
    row = get_decision(store_conn, 11)
    assert _plain(row) == new and [_plain(h) for h in row["history"]] == [old, new]
    assert [_plain(r) for r in scan_decisions(store_conn, T0, T0 + 100)] == [new]
    assert [_plain(r) for r in scan_decisions(store_conn, T0, T0 + 100, decision="approve")] == []
