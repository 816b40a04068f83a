"""Replay provenance in the contracts: the replay headers of applicants.raw (envelope), how a stage's source
reads them (topology.stages.batching), and the raw message an item becomes again (item.raw_message)."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import given, strategies as st

from credit_core.fields import clean_record
from credit_core.messages.dead_letter import minimal_dlq_record
from credit_core.messages.envelope import (ATTEMPT_HEADER, REPLAY_RUN_HEADER, REPLAYED_FROM_HEADER, parse,
                                           replay_headers, replay_provenance)
from credit_core.messages.item import clean_item, provenance, raw_message
from tests.factories import raw_applicant
from topology.stages.batching import record_source


def record(headers, value=b"{}", key=b"5") -> ConsumerRecord:
    return ConsumerRecord(topic="applicants.raw", partition=1, offset=7, timestamp=1_700_000_000_000, timestamp_type=0,
                          key=key, value=value, checksum=None, serialized_key_size=-1, serialized_value_size=-1,
                          headers=headers)


def test_headers_round_trip_into_the_provenance_keys():
    headers = replay_headers(attempt=3, replayed_from="applicants.dlq/2/17", run="abc123")
    assert dict(headers) == {ATTEMPT_HEADER: b"3", REPLAYED_FROM_HEADER: b"applicants.dlq/2/17",
                             REPLAY_RUN_HEADER: b"abc123"}
    expected = {"attempt": 3, "replayed_from": "applicants.dlq/2/17", "replay_run": "abc123"}
    assert replay_provenance(headers) == expected
    assert replay_provenance(dict(headers)) == expected      # faust may hand headers over as a mapping
    assert replay_provenance([]) == {} and replay_provenance(None) == {}


@pytest.mark.parametrize("attempt", [0, 1, True, 10**7, "2"])
def test_replay_headers_refuse_an_attempt_that_is_not_a_replay(attempt):
    with pytest.raises(ValueError):
        replay_headers(attempt=attempt, replayed_from="d/0/1", run="r")


@pytest.mark.parametrize("value", [b"1", b"0", b"-2", b" 2", b"2.0", b"\xd9\xa2", b"99999999", b"", b"x" * 500])
def test_a_malformed_attempt_is_ignored_not_fatal(value):
    assert replay_provenance([(ATTEMPT_HEADER, value), (REPLAY_RUN_HEADER, b"r")]) == {"replay_run": "r"}


def test_text_headers_must_be_printable_utf8_and_short():
    assert replay_provenance([(REPLAYED_FROM_HEADER, b"\xff\xfe"), (REPLAY_RUN_HEADER, b"a\nb")]) == {}
    assert replay_provenance([(REPLAYED_FROM_HEADER, b"d" * 401)]) == {}


@given(st.one_of(st.none(), st.lists(st.tuples(st.one_of(st.text(max_size=24), st.sampled_from(
    [ATTEMPT_HEADER, REPLAYED_FROM_HEADER, REPLAY_RUN_HEADER]), st.none(), st.integers()),
    st.one_of(st.binary(max_size=40), st.none(), st.integers(), st.text(max_size=5))), max_size=6),
    st.dictionaries(st.text(max_size=20), st.binary(max_size=20), max_size=4), st.binary(max_size=10)))
def test_any_headers_give_a_dict_and_never_raise(headers):
    out = replay_provenance(headers)
    assert set(out) <= {"attempt", "replayed_from", "replay_run"}
    assert "attempt" not in out or 2 <= out["attempt"] <= 10**6


def test_record_source_adds_only_a_replays_provenance():
    plain = record((("h", b"\x00"), ("kind", b"x")))
    assert record_source(plain)[2] == {"topic": "applicants.raw", "partition": 1, "offset": 7,
                                       "timestamp_ms": 1_700_000_000_000}
    replayed = record(tuple(replay_headers(attempt=2, replayed_from="applicants.dlq/0/4", run="r1")))
    assert record_source(replayed)[2] == {"topic": "applicants.raw", "partition": 1, "offset": 7,
                                          "timestamp_ms": 1_700_000_000_000, "attempt": 2,
                                          "replayed_from": "applicants.dlq/0/4", "replay_run": "r1"}


def test_the_item_provenance_carries_the_replay_into_hbase_and_keeps_the_producers_fields():
    src = record_source(record(tuple(replay_headers(attempt=2, replayed_from="applicants.dlq/0/4", run="r1"))))[2]
    prov = provenance({"seq": 9, "source": "mysql", "fetched_at": "t1", "created_at": "t0"}, src, 1)
    assert prov["attempt"] == 2 and prov["replayed_from"] == "applicants.dlq/0/4" and prov["replay_run"] == "r1"
    assert prov["seq"] == 9 and prov["offset"] == 7 and prov["timestamp_source"] == "kafka"


def test_a_minimal_dead_letter_keeps_the_attempt_and_where_it_was_replayed_from():
    rec = minimal_dlq_record(stage="filter", reason="x", src={"topic": "t", "partition": 1, "offset": 2,
                                                             "attempt": 3, "replayed_from": "d/1/2",
                                                             "replay_run": 5, "extra": object()},
                             original=b"abc", key=b"k", max_original=10, failure="f")
    assert rec["source"] == {"topic": "t", "partition": 1, "offset": 2, "timestamp_ms": None, "attempt": 3,
                             "replayed_from": "d/1/2"}
    orjson.dumps(rec)


def test_raw_message_starts_an_item_over_from_the_producers_envelope():
    raw = raw_applicant(42)
    cleaned = clean_record(raw)
    producer = {"seq": 4, "source": "mysql", "fetched_at": "2024-01-02T00:00:00Z", "created_at": "2024-01-01",
                "replay": {"by": "reconcile", "run": "r"}}
    item = clean_item(cleaned, producer, {"topic": "applicants.raw", "partition": 3, "offset": 11,
                                          "timestamp_ms": 5, "attempt": 2, "replayed_from": "d/0/0"}, 99)
    key, value = raw_message(item)
    assert key == b"42"
    applicant, prov = parse(value, 1 << 20)
    assert clean_record(applicant) == cleaned            # cleaning is idempotent: the same record again
    assert prov == producer                              # the reconcile marker back as the object it was
    assert "attempt" not in prov and "offset" not in prov


def test_raw_message_refuses_an_item_without_an_applicant_object():
    with pytest.raises(TypeError):
        raw_message({"id": 1, "applicant": [1]})
    with pytest.raises(KeyError):
        raw_message({"id": 1})
