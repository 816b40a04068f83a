"""The cleaning stage's (filter's) parsing, cleaning and validation, and the dead letters it writes."""

from __future__ import annotations

import base64

import pytest

from credit_core.jsoncodec import dumps, loads
from credit_core.messages.keys import partition_for
from topology.stages.cleaning import clean_batch
from tests.factories import raw_applicant
from tests.topology.messages import envelope

# Where a keyed producer puts applicant 7: the partition of murmur2(b"7").
SRC = {"topic": "applicants.raw", "partition": partition_for(b"7", 4), "offset": 42, "timestamp_ms": 1700000000000}


def run(*values, key=b"7", per_message=500):
    msgs = [(key, v, dict(SRC, offset=SRC["offset"] + i)) for i, v in enumerate(values)]
    clean, dead, kept = clean_batch(msgs, partitions=4, max_bytes=10000, max_original=64, per_message=per_message)
    items = [i for _, _, v in clean for i in loads(v)]
    return items, [(p, k, loads(v)) for p, k, v in dead], clean


def applicant(**changes):
    rec = raw_applicant(7)
    rec.update(changes)
    return rec


def test_clean_item_keeps_provenance_and_is_keyed_and_placed_by_id():
    items, dead, clean = run(envelope(applicant(), seq=11, source="api"))
    assert not dead and len(items) == 1
    item = items[0]
    assert item["id"] == 7 and item["applicant"]["id"] == 7
    assert item["provenance"] == {"source": "api", "seq": 11, "fetched_at": "2024-01-01T00:00:00Z", **SRC, "created_at": None,
                                  "timestamp_source": "kafka"}
    assert item["ingested_at"] > 0
    partition, key, _ = clean[0]
    assert key == b"7" and partition == partition_for(b"7", 4)


def test_bare_applicant_object_is_accepted():
    items, dead, _ = run(dumps(applicant()))
    assert not dead and items[0]["provenance"]["offset"] == 42 and items[0]["provenance"]["source"] is None


@pytest.mark.parametrize("field,raw,cleaned", [
    ("int_rate", " 12.39%", 12.39), ("revol_util", "45.2%", 45.2), ("term", " 36 months", 36),
    ("term", " 60 months", 60), ("bc_open_to_buy", "", 0.0), ("bc_util", "", 0.0),
    ("total_il_high_credit_limit", "", 0.0), ("emp_length", "10+ years", 10), ("grade", " b ", "B"),
])
def test_each_cleaning_rule(field, raw, cleaned):
    changes = {field: raw}
    if field == "grade":
        changes["sub_grade"] = "B2"
    items, dead, _ = run(envelope(applicant(**changes), 1))
    assert not dead, dead
    assert items[0]["applicant"][field] == cleaned


@pytest.mark.parametrize("changes,field", [
    ({"dti": "12.x5"}, "dti"), ({"annual_inc": "lots"}, "annual_inc"), ({"annual_inc": "0"}, "annual_inc"),
    ({"dti": "1000"}, "dti"), ({"dti": "-1"}, "dti"), ({"loan_amnt": "0"}, "loan_amnt"),
    ({"funded_amnt": "999999"}, "funded_amnt"), ({"term": " 48 months"}, "term"),
    ({"grade": "Z", "sub_grade": ""}, "grade"), ({"id": ""}, "id"), ({"id": "-3"}, "id"),
    ({"int_rate": "abc%"}, "int_rate"),
])
def test_each_validation_rule_dead_letters_with_the_field(changes, field):
    items, dead, _ = run(envelope(applicant(**changes), 1))
    assert not items and len(dead) == 1
    _, key, rec = dead[0]
    assert rec["reason"] == "invalid applicant" and rec["stage"] == "filter"
    assert field in {e["field"] for e in rec["errors"]}
    assert key == b"7" and rec["id"] == 7


@pytest.mark.parametrize("value,reason", [
    (b"{not json", "not JSON"), (b'{"id": "\xff"}', "not UTF-8"), (b"[1, 2]", "not a JSON object"),
    (b"", "empty message"), (None, "empty message"), (b'{"applicant": 5}', "bad envelope"),
    (b'{"x": "' + b"y" * 20000 + b'"}', "payload too large"),
])
def test_unreadable_payloads_dead_letter_with_original_bytes_and_source(value, reason):
    items, dead, _ = run(value)
    assert not items and len(dead) == 1
    _, key, rec = dead[0]
    assert rec["reason"] == reason and rec["errors"] and rec["stage"] == "filter"
    assert rec["source"] == SRC and rec["failed_at"] > 0 and rec["id"] == 7
    original = value or b""
    assert base64.b64decode(rec["original"]) == original[:64]
    assert rec["original_size"] == len(original) and rec["original_truncated"] == (len(original) > 64)
    assert base64.b64decode(rec["key"]) == b"7"


def test_dead_letter_without_any_id_keeps_the_raw_key():
    items, dead, _ = run(b"nope", key=b"\xffkey")
    assert dead[0][1] == b"\xffkey" and dead[0][2]["id"] is None


def test_records_not_keyed_by_their_id_are_still_placed_by_the_id():
    other = [p for p in range(4) if p != partition_for(b"7", 4)][0]
    for key in (b"other-key", None):
        msgs = [(key, envelope(applicant(), seq=1), dict(SRC, partition=other))]
        clean = clean_batch(msgs, partitions=4, max_bytes=10000, max_original=64, per_message=1)[0]
        assert clean[0][:2] == (partition_for(b"7", 4), b"7")


def test_batch_keeps_good_records_when_some_are_bad_and_packs_per_partition():
    values = [envelope(raw_applicant(i), i) for i in range(1, 41)] + [b"bad"]
    msgs = [(str(i).encode(), v, dict(SRC, offset=i, partition=partition_for(str(i).encode(), 4)))
            for i, v in enumerate(values, start=1)]
    clean, dead, kept = clean_batch(msgs, partitions=4, max_bytes=10000, max_original=64, per_message=3)
    assert kept == 40 and len(dead) == 1
    seen = []
    for partition, key, value in clean:
        chunk = loads(value)
        assert 1 <= len(chunk) <= 3 and key == str(chunk[0]["id"]).encode()
        assert all(partition_for(str(i["id"]).encode(), 4) == partition for i in chunk)
        seen += [i["id"] for i in chunk]
    assert sorted(seen) == list(range(1, 41))


def test_sloppy_provenance_types_are_normalised():
    value = dumps({"applicant": applicant(), "provenance": {"source": 5, "seq": "12", "fetched_at": True}})
    items, dead, _ = run(value)
    prov = items[0]["provenance"]
    assert prov["source"] == "5" and prov["seq"] == 12 and prov["fetched_at"] is None


def test_a_reconciliation_replay_marker_is_kept_as_a_short_string():
    value = envelope(raw_applicant(8), 8).replace(
        b'"provenance":{', b'"provenance":{"replay":{"by":"reconcile","run":"r1","reason":"lost","x":' + b"[" * 300
        + b"]" * 300 + b'},')
    clean, dead, kept = clean_batch([(b"8", value, SRC)], partitions=4, max_bytes=10000, max_original=64, per_message=1)
    assert kept == 1 and not dead
    prov = loads(clean[0][2])[0]["provenance"]
    assert loads(prov["replay"])["by"] == "reconcile" and len(prov["replay"]) < 2500
