"""The reconciliation's pure parts: the comparison, the reports and the replay envelope (no servers)."""

from __future__ import annotations

import json
import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.ids import dead_letter_id
from deploy.reconcile import compare, describe, stall_report
from deploy.republish import REPLAY_SOURCE, replay_message


def pages(ids_seqs, size):
    rows = sorted(ids_seqs)
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def test_names_missing_both_and_foreign_ids():
    store = [(i, i) for i in range(1, 8)]
    rec = compare(pages(store, 3), iter([5, 1, 2, 4, 2**70, 99]), {4, 5, 6, 999}, store_max_seq=7,
                  dlq_records=5, dlq_without_id=1, producer_checkpoint=5)
    assert rec.missing == [3, 7]
    assert rec.unpublished == [7] and rec.lost == [3]
    assert rec.both == [4, 5]
    assert rec.hbase_not_in_store == [99, 2**70]
    assert rec.dlq_not_in_store == [999]
    assert (rec.store, rec.hbase, rec.dlq, rec.dlq_without_id) == (7, 6, 5, 1)
    assert not rec.reconciled
    text = "\n".join(describe(rec, sample=1))
    assert "MISSING: 2 applicants" in text and "ids: 3, ... (1 more)" in text
    assert "IN BOTH HBase and the DLQ: 2" in text and "reconciled: no" in text
    assert "1 published by the producer (checkpoint at seq 5) and lost, 1 not published yet" in text
    report = stall_report(rec)
    assert report.startswith("1 applicants are lost") and "e.g. 3." in report and "memory only" in report
    durable = stall_report(rec, durable_broker=True)   # Apache Kafka: the loss is downstream of the broker
    assert "e.g. 3." in durable and "memory only" not in durable and "committed past them" in durable
    out = rec.as_json()
    assert out["missing"] == [3, 7] and out["missing_count"] == 2 and out["lost"] == [3]
    assert out["both"] == [4, 5] and out["reconciled"] is False
    assert json.loads(rec.to_json())["hbase_not_in_store"] == [99, 2**70]  # beyond 64 bits too


def test_an_id_replayed_from_the_dlq_and_saved_is_replayed_not_in_both():
    store = [(1, 1), (2, 2), (3, 3)]
    # 2 was dead-lettered, replayed (the ledger names it) and saved; 3 is in both without a replay: a duplicate.
    rec = compare(pages(store, 2), [1, 2, 3], [2, 3], store_max_seq=3, replayed_ids={2, 7})
    assert rec.replayed == [2] and rec.both == [3] and not rec.reconciled
    assert compare(pages(store, 2), [1, 2, 3], [2], store_max_seq=3, replayed_ids=[2]).reconciled
    # A replay that failed again leaves the id in the DLQ only: nothing to say about it.
    again = compare(pages(store, 2), [1, 3], [2], store_max_seq=3, replayed_ids=[2])
    assert again.reconciled and again.replayed == [] and again.both == []


def test_an_empty_or_complete_pipeline_reconciles():
    assert compare([], [], [], store_max_seq=0).reconciled
    rec = compare(pages([(1, 1), (2, 2), (3, 3)], 2), [3, 1], [2], store_max_seq=3)
    assert rec.reconciled and rec.missing == [] and rec.both == []
    assert "missing: none" in "\n".join(describe(rec))
    assert stall_report(rec).startswith("nothing is lost")
    unknown = compare(pages([(1, 1), (2, 2)], 2), [1], [], store_max_seq=2)
    assert unknown.lost == [2] and "no producer checkpoint was found" in stall_report(unknown)
    pending = compare(pages([(1, 1), (2, 2)], 2), [1], [], store_max_seq=2, producer_checkpoint=1)
    assert pending.lost == [] and stall_report(pending).startswith("1 applicants are not published yet")


@settings(max_examples=200, deadline=None)
@given(store=st.sets(st.integers(1, 2**63 - 1), max_size=60), hbase=st.sets(st.integers(1, 10**20 - 1), max_size=60),
       dlq=st.sets(st.integers(1, 10**20 - 1), max_size=20), page=st.integers(1, 7), seed=st.integers(0, 99))
def test_compare_agrees_with_set_arithmetic(store, hbase, dlq, page, seed):
    hbase_list = list(hbase | set(random.Random(seed).sample(sorted(store), len(store) // 2)))
    random.Random(seed).shuffle(hbase_list)
    saved = set(hbase_list)
    rec = compare(pages([(i, n) for n, i in enumerate(sorted(store), 1)], page), iter(hbase_list), dlq,
                  store_max_seq=len(store))
    assert rec.missing == sorted(store - saved - dlq)
    assert rec.both == sorted(saved & dlq)
    assert rec.hbase_not_in_store == sorted(saved - store)
    assert rec.dlq_not_in_store == sorted(dlq - store)
    assert rec.store == len(store) and rec.hbase == len(saved)


def test_dead_letter_id_reads_only_a_positive_integer_id():
    assert dead_letter_id(orjson.dumps({"id": 42, "reason": "x"})) == 42
    for value in (b"garbage", b"[1]", orjson.dumps({"id": None}), orjson.dumps({"id": "42"}),
                  orjson.dumps({"id": True}), orjson.dumps({"id": -3}), orjson.dumps({})):
        assert dead_letter_id(value) is None, value


def test_replay_message_is_the_producers_envelope_marked_as_a_replay():
    row = orjson.dumps({"id": 123, "seq": 77, "source": "synthetic", "created_at": "2026-11-28T10:00:00.000000Z",
                        "loan_amnt": 1000.0, "grade": "B"})
    key, value = replay_message(row, fetched_at="2026-11-28T20:00:00.000000Z", run_id="abc")
    envelope = orjson.loads(value)
    assert key == b"123"
    assert envelope["applicant"] == {"id": 123, "loan_amnt": 1000.0, "grade": "B"}
    prov = envelope["provenance"]
    assert prov["source"] == REPLAY_SOURCE and prov["seq"] == 77
    assert prov["created_at"] == "2026-11-28T10:00:00.000000Z" and prov["fetched_at"] == "2026-11-28T20:00:00.000000Z"
    assert prov["replay"]["by"] == "reconcile" and prov["replay"]["original_source"] == "synthetic"
    assert prov["replay"]["run"] == "abc"
