"""Row keys, the time index, cell encoding, contract checks and table creation of hbase_helper.layout."""

from __future__ import annotations

import math
import threading
from collections import Counter

import orjson
import pytest

from hbase_helper import layout
from credit_core.messages.decision import DecisionError, validate_decision


def test_row_key_is_a_function_of_the_id_only(store_make_decision):
    key = layout.row_key(12345)
    assert key == layout.row_key(12345)
    assert key == b"827c:00000000000000012345"
    assert layout.id_from_row_key(key) == 12345
    # everything else in the decision may change on a replay; the key may not
    first = store_make_decision(12345, decided_at=1)
    replay = store_make_decision(12345, decided_at=999, decision="decline")
    assert layout.encode_main_row(first, 1)[0] == layout.encode_main_row(replay, 2)[0] == key


def test_row_keys_spread_consecutive_ids():
    ids = range(1, 4097)
    keys = [layout.row_key(i) for i in ids]
    assert len(set(keys)) == len(keys)
    prefixes = Counter(k[:4] for k in keys)
    assert len(prefixes) > 3500  # 4,096 consecutive ids hit ~all-distinct 2-byte prefixes
    # sorted key order (region order) is unrelated to id order: no append-only hotspot
    order = [layout.id_from_row_key(k) for k in sorted(keys)]
    in_sequence = sum(1 for a, b in zip(order, order[1:]) if b == a + 1)
    assert in_sequence < 50
    # first hex digit = the 16 natural region split points, each used about equally
    first_digit = Counter(k[:1] for k in keys)
    assert len(first_digit) == 16 and min(first_digit.values()) > 4096 / 16 * 0.7


def test_index_buckets_spread_and_are_stable():
    counts = Counter(layout.bucket(i) for i in range(1, 3201))
    assert sorted(counts) == list(range(layout.INDEX_BUCKETS))
    assert min(counts.values()) > 3200 / 16 * 0.7 and max(counts.values()) < 3200 / 16 * 1.3
    assert layout.index_key(77, 1_700_000_000_123) == layout.index_key(77, 1_700_000_000_123)
    assert layout.parse_index_key(layout.index_key(77, 1_700_000_000_123)) == (layout.bucket(77),
                                                                                1_700_000_000_123, 77)


def test_index_keys_sort_in_time_order_within_a_bucket():
    same_bucket = [i for i in range(1, 500) if layout.bucket(i) == 3][:2]
    times = [5, 999, 1000, 1_699_999_999_999, 1_700_000_000_000]
    keys = [layout.index_key(same_bucket[0], t) for t in times]
    assert keys == sorted(keys)
    # equal times: ordered by id
    a, b = sorted(same_bucket)
    assert layout.index_key(a, 1000) < layout.index_key(b, 1000)


def test_index_scan_ranges_cover_exactly_start_inclusive_stop_exclusive():
    start, stop = 1_000, 2_000
    ranges = layout.index_scan_ranges(start, stop)
    assert len(ranges) == layout.INDEX_BUCKETS

    def covered(key: bytes) -> bool:
        return any(lo <= key < hi for lo, hi in ranges)

    for app_id in range(1, 60):
        assert covered(layout.index_key(app_id, start))
        assert covered(layout.index_key(app_id, stop - 1))
        assert not covered(layout.index_key(app_id, start - 1))
        assert not covered(layout.index_key(app_id, stop))


@pytest.mark.parametrize("bad, exc", [(True, TypeError), ("12", TypeError), (1.0, TypeError),
                                      (0, ValueError), (-5, ValueError), (10**20, ValueError)])
def test_bad_ids_are_rejected(bad, exc):
    with pytest.raises(exc):
        layout.row_key(bad)


def test_bad_times_are_rejected():
    with pytest.raises(ValueError):
        layout.index_key(1, -1)
    with pytest.raises(ValueError):
        layout.index_key(1, 10**13)
    with pytest.raises(TypeError):
        layout.index_scan_ranges(1.5, 10)


def test_a_decision_is_one_history_cell_that_round_trips_with_exact_types(store_make_decision):
    decision = store_make_decision(42, decision="decline", decided_by="policy")
    decision["applicant"]["int_rate"], decision["applicant"]["emp_length"] = 12.39, None
    key, cells = layout.encode_main_row(decision, saved_at=1_700_000_000_999)
    okey = layout.order_key(decision["provenance"])
    assert list(cells) == [b"d:h" + okey]
    stored = orjson.loads(cells[b"d:h" + okey])
    assert stored["applicant"]["int_rate"] == 12.39 and stored["applicant"]["emp_length"] is None
    assert stored["probability_of_default"] is None and stored["policy_version"] == "policy-v1"
    assert stored["provenance"]["topic"] == "applicants.raw" and stored["saved_at"] == 1_700_000_000_999
    row = layout.decode_main_row(key, cells)
    assert row.pop("saved_at") == 1_700_000_000_999
    assert row.pop("row_key") == key.decode()
    assert row.pop("index_key") == layout.encode_index_row(decision)[0].decode()
    assert (row.pop("time_ms"), row.pop("time_source")) == (decision["provenance"]["timestamp_ms"], "kafka")
    assert row.pop("history_key") == okey.decode()
    history = row.pop("history")
    assert row == decision
    assert len(history) == 1 and {k: v for k, v in history[0].items() if k not in layout.STORE_FIELDS} == decision


def test_missing_optional_fields_are_stored_as_null(store_make_decision):
    decision = store_make_decision(43)
    for name in ("probability_of_default", "risk_band", "model_version", "threshold", "reasons"):
        del decision[name]
    del decision["provenance"]["source"]
    decision["provenance"]["fetched_at"] = "2024-06-01T12:00:00.123456Z"  # producer fields are kept
    row = layout.decode_main_row(*layout.encode_main_row(decision, 1))
    assert row["probability_of_default"] is None and row["reasons"] == []
    assert row["provenance"]["source"] is None
    assert row["provenance"]["fetched_at"] == "2024-06-01T12:00:00.123456Z"


def test_index_row_holds_decision_and_points_at_main_row(store_make_decision):
    decision = store_make_decision(42, decision="decline", raw_ts=1_700_000_000_500)
    key, cells = layout.encode_index_row(decision)
    assert key == layout.index_key(42, 1_700_000_000_500, b"s%020d" % decision["provenance"]["seq"])
    assert cells == {b"i:decision": b"decline"}
    entry = layout.decode_index_row(key, cells)
    assert (entry["id"], entry["time_ms"], entry["decision"]) == (42, 1_700_000_000_500, "decline")
    assert entry["row"] == layout.row_key(42)   # computed from the id in the index key
    # layout-1 keys (no version part) still parse
    assert layout.parse_index_key(layout.index_key(42, 5)) == (layout.bucket(42), 5, 42)


def test_index_key_is_the_same_for_every_copy_of_one_application_version(store_make_decision):
    first = store_make_decision(9, raw_ts=1_000_000, decided_at=2_000_000)
    replay = store_make_decision(9, raw_ts=1_000_000, decided_at=3_000_000)
    assert layout.encode_index_row(first)[0] == layout.encode_index_row(replay)[0]
    # a page the producer published again: new raw record, same store row (seq, created_at)
    created = "2024-06-01T12:00:00.250000Z"
    original = store_make_decision(9, raw_ts=1_000_000)
    original["provenance"]["created_at"] = created
    again = store_make_decision(9, raw_ts=7_000_000)
    again["provenance"].update(created_at=created, offset=original["provenance"]["offset"] + 500)
    assert layout.encode_index_row(original)[0] == layout.encode_index_row(again)[0]
    assert layout.entry_time(again) == (1_717_243_200_250, "created")
    for same in ("2024-06-01T12:00:00.250", "2024-06-01T14:00:00.250+02:00", 1_717_243_200_250, "1717243200250"):
        assert layout.created_time({"created_at": same}) == 1_717_243_200_250
    for unusable in ("yesterday", "", "2024-13-01T00:00:00Z", -5, 10**13, "99999999999999", None, 1.5, "²"):
        assert layout.created_time({"created_at": unusable}) is None
    assert layout.encode_main_row(original, 1)[1].keys() != layout.encode_main_row(again, 1)[1].keys()
    # a resubmission (new seq) is a new version: its own index row
    resubmitted = store_make_decision(9, raw_ts=1_000_000)
    resubmitted["provenance"]["seq"] += 1
    assert layout.encode_index_row(resubmitted)[0] != layout.encode_index_row(first)[0]


@pytest.mark.parametrize("ts", [None, -1, -5, 10**13, "soon", True])
def test_a_record_without_a_usable_timestamp_is_timed_by_its_ingestion(store_make_decision, ts):
    decision = store_make_decision(9, raw_ts=1_700_000_000_000)
    decision["provenance"]["timestamp_ms"] = ts
    assert validate_decision(decision) == 9
    assert layout.entry_time(decision) == (decision["ingested_at"], "ingested")
    row = layout.decode_main_row(*layout.encode_main_row(decision, 1))
    assert row["time_source"] == "ingested" and row["time_ms"] == decision["ingested_at"]
    assert row["provenance"]["timestamp_ms"] == decision["ingested_at"]
    assert row["provenance"]["timestamp_source"] == "ingested"
    assert row["provenance"].get("kafka_timestamp_ms") == ts
    assert layout.encode_index_row(decision)[0] == layout.index_key(9, decision["ingested_at"],
                                                                     b"s%020d" % decision["provenance"]["seq"])


def test_a_timestamp_the_filter_replaced_by_the_ingest_time_is_kept_and_not_used_to_order(store_make_decision):
    decision = store_make_decision(9, ingested_at=1_700_000_000_777)
    decision["provenance"].update(timestamp_ms=1_700_000_000_770, timestamp_source="ingested", seq=None)
    row = layout.decode_main_row(*layout.encode_main_row(decision, 1))
    assert row["provenance"]["timestamp_ms"] == 1_700_000_000_770 and "kafka_timestamp_ms" not in row["provenance"]
    assert row["time_source"] == "ingested"
    # a replay is ingested later: its order key (history cell) must not change
    replay = store_make_decision(9, ingested_at=1_700_000_009_000)
    replay["provenance"].update(timestamp_ms=1_700_000_008_990, timestamp_source="ingested", seq=None)
    assert layout.order_key(decision["provenance"]) == layout.order_key(replay["provenance"])


def _prov(seq=None, ts=1000, offset=0, partition=0, topic="applicants.raw"):
    return {"topic": topic, "partition": partition, "offset": offset, "timestamp_ms": ts, "seq": seq}


def test_order_keys_sort_by_seq_else_kafka_time_then_offset():
    ordered = [
        _prov(seq=None, ts=None, offset=9),          # no seq, no time: offset only
        _prov(seq=None, ts=5, offset=1),
        _prov(seq=None, ts=5, offset=2),
        _prov(seq=None, ts=6, offset=0),
        _prov(seq=0, ts=9_999, offset=50),            # any sequenced record after every unsequenced one
        _prov(seq=2, ts=1, offset=3),
        _prov(seq=10, ts=1, offset=1),                # 10 > 2 as numbers, and as padded bytes
        _prov(seq=10, ts=1, offset=2),                # ties by offset
        _prov(seq=10, ts=1, offset=2, partition=3),   # then partition, then topic
        _prov(seq=10, ts=1, offset=2, partition=3, topic="b"),
        _prov(seq=2**63 - 1, ts=0, offset=2**63 - 1, partition=2**31 - 1),
    ]
    keys = [layout.order_key(p) for p in ordered]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # a seq that is not a 64-bit sequence number orders the record as unsequenced
    assert layout.order_key(_prov(seq="12", ts=5)) == layout.order_key(_prov(seq=None, ts=5))
    assert layout.order_key(_prov(seq=2**63, ts=5)) == layout.order_key(_prov(seq=None, ts=5))


def test_a_layout_1_row_reads_as_a_history_of_one_and_orders_with_new_cells(store_make_decision):
    old = store_make_decision(42, raw_ts=1_700_000_000_000)
    prov = {**old["provenance"]}
    legacy_index = layout.index_key(42, prov["timestamp_ms"])
    legacy = {
        b"a:applicant": orjson.dumps(old["applicant"]), b"d:decision": old["decision"].encode(),
        b"d:result": orjson.dumps({k: old[k] for k in layout.RESULT_FIELDS}),
        b"m:meta": orjson.dumps({"id": 42, "provenance": prov, "ingested_at": old["ingested_at"],
                                 "decided_at": old["decided_at"], "saved_at": 5, "index_key": legacy_index.decode()}),
    }
    key = layout.row_key(42)
    row = layout.decode_main_row(key, legacy)
    assert {k: v for k, v in row.items() if k not in layout.STORE_FIELDS} == old
    assert row["index_key"] == legacy_index.decode() and row["time_ms"] == prov["timestamp_ms"]
    newer = store_make_decision(42, decision="decline")
    newer["provenance"]["seq"] += 1
    older = store_make_decision(42, decided_at=1)
    older["provenance"]["seq"] -= 1
    cells = {**legacy, **layout.encode_main_row(newer, 9)[1], **layout.encode_main_row(older, 9)[1]}
    row = layout.decode_main_row(key, cells)
    assert row["decision"] == "decline" and row["provenance"]["seq"] == newer["provenance"]["seq"]
    assert [h["provenance"]["seq"] for h in row["history"]] == [prov["seq"] - 1, prov["seq"], prov["seq"] + 1]
    # the same raw record saved again by layout 2 replaces the legacy entry
    again = layout.encode_main_row(old, 10)[1]
    row = layout.decode_main_row(key, {**legacy, **again})
    assert len(row["history"]) == 1 and row["saved_at"] == 10
    assert layout.decode_main_row(key, {b"a:other": b"x"}) is None


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(id="7"), "id"),
    (lambda d: d.update(decision="maybe"), "decision"),
    (lambda d: d.update(decided_by="human"), "decided_by"),
    (lambda d: d.update(probability_of_default=math.nan), "probability_of_default"),
    (lambda d: d.update(probability_of_default=1.5), "probability_of_default"),
    (lambda d: d.update(reasons="LOW_PD"), "reasons"),
    (lambda d: d.update(reasons=[{"text": "no code"}]), "reasons"),
    (lambda d: d.pop("provenance"), "provenance"),
    (lambda d: d["provenance"].update(offset=-1), "provenance.offset"),
    (lambda d: d["provenance"].update(offset=2**63), "provenance.offset"),
    (lambda d: d["provenance"].update(partition=2**31), "provenance.partition"),
    (lambda d: d["provenance"].update(partition="1"), "provenance.partition"),
    (lambda d: d["provenance"].pop("topic"), "provenance.topic"),
    (lambda d: d.update(decided_at="yesterday"), "decided_at"),
    (lambda d: d.pop("ingested_at"), "ingested_at"),
    (lambda d: d["applicant"].update(id=8), "applicant.id"),
    (lambda d: d.update(applicant=[1, 2]), "applicant"),
    (lambda d: d["applicant"].update({5: 1}), "applicant"),
    (lambda d: d["applicant"].update(when=object()), "applicant"),
    (lambda d: d["reasons"][0].update(when=object()), "result"),
    (lambda d: d["provenance"].update(source=b"bytes"), "provenance.source"),
    (lambda d: d["provenance"].update(extra=[1]), "provenance.extra"),
])
def test_contract_violations_name_the_field(store_make_decision, change, field):
    decision = store_make_decision(7)
    change(decision)
    with pytest.raises(DecisionError) as err:
        validate_decision(decision)
        layout.encode_main_row(decision, 1)
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_ensure_tables_creates_once_with_the_families(store_settings):
    from hbase_helper.pool import connect

    with connect(store_settings) as conn:
        assert layout.ensure_tables(conn) == [layout.MAIN_TABLE, layout.INDEX_TABLE]
        assert layout.ensure_tables(conn) == []
        names = {n.decode() for n in conn.tables()}
        assert {layout.MAIN_TABLE, layout.INDEX_TABLE} <= names
        assert set(conn.table(layout.MAIN_TABLE).families()) == {b"a", b"d", b"m"}
        assert set(conn.table(layout.INDEX_TABLE).families()) == {b"i"}


def test_ensure_tables_is_safe_when_workers_race(store_settings):
    from hbase_helper.pool import connect

    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            with connect(store_settings) as conn:
                barrier.wait()
                results.append(layout.ensure_tables(conn))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    created = [name for names in results for name in names]
    assert sorted(created) == sorted([layout.MAIN_TABLE, layout.INDEX_TABLE])


def test_ensure_tables_refuses_a_foreign_table_of_the_same_name(store_settings):
    from hbase_helper.pool import connect

    with connect(store_settings) as conn:
        conn.create_table(layout.INDEX_TABLE, {"x": {}})
        with pytest.raises(RuntimeError, match="without column families"):
            layout.ensure_tables(conn)
