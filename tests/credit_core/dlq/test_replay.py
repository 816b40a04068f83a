"""credit_core.dlq.replay and .ledger, pure: what a replay publishes for each stage's dead letter (and that the
filter stage takes it back with its replay provenance), which dead letters a run replays, and the ledger."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import given, strategies as st

from credit_core.dlq.ledger import (FAILED_AGAIN, NEW, REPLAYED, ledger_entry, ledger_index, parse_entry,
                                    replay_status)
from credit_core.dlq.records import DeadLetter, parse_dead_letter
from credit_core.dlq.replay import RAW_STAGE, NotReplayable, plan, replay_messages
from credit_core.messages.dead_letter import dead_letter, item_dead_letter
from credit_core.messages.decision import decision
from credit_core.messages.envelope import ATTEMPT_HEADER, REPLAYED_FROM_HEADER
from tests.factories import raw_applicant
from topology.stages.batching import record_source
from topology.stages.cleaning import clean_batch

PARTITIONS = 4
DLQ = "applicants.dlq"
RAW_SRC = {"topic": "applicants.raw", "partition": 1, "offset": 30, "timestamp_ms": 1_700_000_000_000}


def envelope(app_id: int, **fields) -> bytes:
    return orjson.dumps({"applicant": raw_applicant(app_id, **fields),
                         "provenance": {"seq": app_id, "source": "mysql", "fetched_at": "2024-01-02T00:00:00Z",
                                        "created_at": "2024-01-01T00:00:00"}})


def as_view(dlq_message, offset=0) -> DeadLetter:
    partition, key, value = dlq_message
    return parse_dead_letter(topic=DLQ, partition=partition, offset=offset, timestamp=1, key=key, value=value)


def filter_stage(key, value, src=RAW_SRC, headers=()):
    """The filter stage on one raw record as the worker reads it (an aiokafka ConsumerRecord with headers)."""
    rec = ConsumerRecord(topic=src["topic"], partition=src["partition"], offset=src["offset"],
                         timestamp=src["timestamp_ms"], timestamp_type=0, key=key, value=value, checksum=None,
                         serialized_key_size=-1, serialized_value_size=-1, headers=tuple(headers))
    clean, dead, _ = clean_batch([record_source(rec)], partitions=PARTITIONS, max_bytes=1 << 20,
                                 max_original=1 << 16, per_message=10)
    items = [item for _, _, v in clean for item in orjson.loads(v)]
    return items, dead


def clean_item_of(app_id: int) -> dict:
    [item], _ = filter_stage(str(app_id).encode(), envelope(app_id))
    return item


def test_the_raw_stage_is_the_cleaning_stage():
    from topology.stages import cleaning

    assert RAW_STAGE == cleaning.STAGE


def test_a_filter_dead_letter_replays_its_original_bytes_and_fails_again_as_attempt_2():
    _, [dead] = filter_stage(b"5", envelope(5, dti="1x"))
    dl = as_view(dead, offset=3)
    assert replay_messages(dl) == [(b"5", envelope(5, dti="1x"))]
    [p] = plan([dl], {}, run="run1", max_attempts=2).replay
    assert p.attempt == 2 and dict(p.headers)[REPLAYED_FROM_HEADER] == f"{DLQ}/{dead[0]}/3".encode()
    # Unfixed, it fails again: the new dead letter says which attempt and where it was replayed from.
    _, [again] = filter_stage(*p.messages[0], src={**RAW_SRC, "offset": 99}, headers=p.headers)
    dl2 = as_view(again, offset=4)
    assert (dl2.attempt, dl2.replayed_from, dl2.replay_run, dl2.reason) == (2, dl.coordinates, "run1",
                                                                            "invalid applicant")
    # ...and a second replay of it passes the default limit of two attempts only when asked to.
    assert plan([dl2], {}, run="run2", max_attempts=2).skipped[0].kind == "attempts"
    assert plan([dl2], {}, run="run2", max_attempts=3).replay[0].attempt == 3


def test_fixed_bytes_replace_the_original_and_the_applicant_goes_through_with_its_provenance():
    _, [dead] = filter_stage(b"5", envelope(5, dti="1x"))
    dl = as_view(dead)
    fixed = envelope(5)
    [p] = plan([dl], {}, run="r", max_attempts=2, fixed_value=fixed).replay
    assert p.messages == [(b"5", fixed)] and p.fixed_sha256
    [item], dead = filter_stage(*p.messages[0], headers=p.headers)
    assert not dead and item["id"] == 5
    assert item["provenance"]["attempt"] == 2 and item["provenance"]["replayed_from"] == dl.coordinates
    _, [other] = filter_stage(b"6", b"not json")
    with pytest.raises(ValueError, match="one dead letter"):
        plan([dl, as_view(other, offset=8)], {}, run="r", max_attempts=2, fixed_value=fixed)


def test_a_later_stage_dead_letter_replays_its_applicant_from_the_start():
    item = clean_item_of(12)
    _, _, value = item_dead_letter(stage="submit", item=item, reason="risk API rejected the request",
                                   errors=[{"field": "$", "reason": "HTTP 413"}], partitions=PARTITIONS,
                                   max_original=1 << 16, applicant=item["applicant"])
    dl = parse_dead_letter(topic=DLQ, partition=0, offset=5, key=b"12", value=value)
    [(key, raw)] = replay_messages(dl)
    assert key == b"12"
    [p] = plan([dl], {}, run="r9", max_attempts=2).replay
    [again], dead = filter_stage(key, raw, src={**RAW_SRC, "offset": 77}, headers=p.headers)
    assert not dead
    assert again["applicant"] == item["applicant"]                     # the same cleaned applicant
    prov = again["provenance"]
    assert {k: prov[k] for k in ("seq", "source", "fetched_at", "created_at")} == \
        {k: item["provenance"][k] for k in ("seq", "source", "fetched_at", "created_at")}
    assert (prov["offset"], prov["attempt"], prov["replayed_from"], prov["replay_run"]) == (77, 2, dl.coordinates,
                                                                                           "r9")


def test_a_save_dead_letter_holds_a_decision_and_replays_its_applicant():
    item = clean_item_of(13)
    dec = decision(item, verdict="decline", decided_by="policy", reasons=[{"code": "X"}], policy_version="p")
    dec["provenance"] = {**dec["provenance"], "bad": [1]}             # what made the writer refuse it
    _, _, value = item_dead_letter(stage="save", item=dec, reason="decision breaks the HBase writer's contract",
                                   errors=[], partitions=PARTITIONS, max_original=1 << 16)
    [(key, raw)] = replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=6, value=value))
    [again], dead = filter_stage(key, raw)
    assert not dead and again["applicant"] == item["applicant"] and "bad" not in again["provenance"]


def test_a_whole_internal_message_replays_each_applicant_in_it():
    items = [clean_item_of(20), clean_item_of(21)]
    _, _, value = dead_letter(stage="decision", reason="internal error", errors=[], original=orjson.dumps(items),
                              key=b"20", src={"topic": "applicants.clean", "partition": 0, "offset": 1},
                              app_id=None, partitions=PARTITIONS, max_original=1 << 16)
    messages = replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=7, value=value))
    assert [k for k, _ in messages] == [b"20", b"21"]


def test_a_cut_later_stage_original_falls_back_to_the_applicant_kept():
    item = clean_item_of(14)
    _, _, value = item_dead_letter(stage="submit", item=item, reason="r", errors=[], partitions=PARTITIONS,
                                   max_original=50, applicant=item["applicant"])
    [(key, raw)] = replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=8, value=value))
    assert key == b"14" and orjson.loads(raw)["applicant"] == item["applicant"]
    _, _, bare = item_dead_letter(stage="submit", item=item, reason="r", errors=[], partitions=PARTITIONS,
                                  max_original=50)
    with pytest.raises(NotReplayable, match="no applicant"):
        replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=9, value=bare))


def test_what_cannot_be_replayed_says_why():
    _, _, cut = dead_letter(stage="filter", reason="payload too large", errors=[], original=b"x" * 100, key=b"1",
                            src=RAW_SRC, app_id=1, partitions=PARTITIONS, max_original=10)
    with pytest.raises(NotReplayable, match="--value-file"):
        replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=1, value=cut))
    assert replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=1, value=cut), b"{}") == [(b"1", b"{}")]
    tampered = orjson.loads(dead_letter(stage="filter", reason="r", errors=[], original=b"abc", key=b"1", src=RAW_SRC,
                                        app_id=1, partitions=PARTITIONS, max_original=10)[2])
    tampered["original_sha256"] = "0" * 64
    with pytest.raises(NotReplayable, match="sha256"):
        replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=2, value=orjson.dumps(tampered)))
    with pytest.raises(NotReplayable, match="not a dead-letter record"):
        replay_messages(parse_dead_letter(topic=DLQ, partition=0, offset=3, value=b"garbage"))


def test_plan_replays_each_once_leaves_out_the_ledgers_and_keeps_one_per_application():
    _, [d1] = filter_stage(b"5", envelope(5, dti="1x"))
    _, [d2] = filter_stage(b"5", envelope(5, grade="Z"), src={**RAW_SRC, "offset": 31})
    _, [d3] = filter_stage(b"8", b"not json")
    a, b, c = (as_view(d, offset=n) for n, d in ((1, d1), (2, d2), (3, d3)))
    a, b = replace(a, failed_at=1), replace(b, failed_at=2)       # application 5 failed twice: b is newer
    out = plan([a, b, c, c], {}, run="r", max_attempts=2)
    assert [p.dead_letter.position for p in out.replay] == [b.position, c.position]
    assert [(s.dead_letter.position, s.kind) for s in out.skipped] == [(a.position, "superseded")]
    key, value = ledger_entry(b, run="r0", at_ms=5, attempt=2, raw=("applicants.raw", 1, 2))
    ledger = ledger_index([(key, value)])
    out = plan([b, c], ledger, run="r", max_attempts=2)
    assert [p.dead_letter.position for p in out.replay] == [c.position]
    assert out.skipped[0].kind == "replayed" and "--again" in out.skipped[0].why
    again = plan([b], ledger, run="r", max_attempts=2, again=True)
    assert again.replay[0].again and again.replay[0].attempt == 2


def test_ledger_entries_round_trip_and_anything_else_is_ignored():
    dl = DeadLetter(topic=DLQ, partition=2, offset=17, readable=True, stage="submit", reason="r", app_id=9)
    key, value = ledger_entry(dl, run="abc", at_ms=123, attempt=2, raw=("applicants.raw", 3, 40), again=True,
                              fixed_sha256="f" * 64)
    entry = parse_entry(key, value)
    assert key == b"applicants.dlq/2/17"
    assert (entry.dead_letter, entry.run, entry.at_ms, entry.attempt, entry.raw, entry.app_id, entry.again,
            entry.fixed_sha256) == ("applicants.dlq/2/17", "abc", 123, 2, ("applicants.raw", 3, 40), 9, True, "f" * 64)
    assert parse_entry(b"other/0/0", value) is None            # a key that is not its dead letter's
    assert ledger_index([(key, value), (b"x", b"garbage"), (None, None), (key, b"[]")]) == {dl.coordinates: [entry]}


@given(st.one_of(st.none(), st.binary(max_size=30)), st.one_of(st.none(), st.binary(max_size=200)))
def test_any_ledger_record_parses_or_is_ignored(key, value):
    entry = parse_entry(key, value)
    assert entry is None or isinstance(entry.dead_letter, str)


def test_replay_status_new_replayed_failed_again_and_replayed_again():
    first = DeadLetter(topic=DLQ, partition=0, offset=1, readable=True, stage="filter")
    failed = DeadLetter(topic=DLQ, partition=0, offset=2, readable=True, stage="filter", attempt=2,
                        replayed_from=first.coordinates, replay_run="r1")
    other = DeadLetter(topic=DLQ, partition=0, offset=3, readable=True, stage="filter")
    run1 = ledger_entry(first, run="r1", at_ms=1, attempt=2, raw=None)
    status = replay_status([first, failed, other], ledger_index([run1]))
    assert status == {first.coordinates: FAILED_AGAIN, failed.coordinates: NEW, other.coordinates: NEW}
    run2 = ledger_entry(first, run="r2", at_ms=2, attempt=2, raw=None, again=True)
    assert replay_status([first, failed], ledger_index([run1, run2]))[first.coordinates] == REPLAYED
    assert dict(plan([first], {}, run="r", max_attempts=2).replay[0].headers)[ATTEMPT_HEADER] == b"2"


def _dumps(value) -> bytes:
    """JSON as the stdlib writes it (integers beyond 64 bits too, which orjson refuses)."""
    return json.dumps(value).encode()


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8)),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=8)
items = st.fixed_dictionaries({"id": st.one_of(st.integers(-5, 2**64), st.text(max_size=3)),
                               "applicant": st.one_of(json_values, st.dictionaries(st.text(max_size=6), json_values,
                                                                                   max_size=4)),
                               "provenance": json_values})


@given(st.sampled_from(["filter", "decision", "submit", "save"]),
       st.one_of(st.binary(max_size=60), items.map(_dumps), st.lists(items, max_size=3).map(_dumps)),
       st.one_of(st.none(), json_values), st.one_of(st.none(), st.integers(1, 2**63 - 1)))
def test_any_dead_letter_replays_to_raw_messages_or_says_why_not(stage, original, applicant, app_id):
    rec = {"stage": stage, "reason": "r", "id": app_id, "original": base64.b64encode(original).decode(),
           "original_size": len(original), "applicant": applicant, "source": {"seq": 1}}
    dl = parse_dead_letter(topic=DLQ, partition=0, offset=1, value=_dumps(rec))
    try:
        messages = replay_messages(dl)
    except NotReplayable as exc:
        assert str(exc)
        return
    assert messages and all((k is None or isinstance(k, bytes)) and isinstance(v, bytes) for k, v in messages)
