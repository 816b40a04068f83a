"""Dead letters as the dashboard shows them: records written by the workers' own code, read back and counted."""

from __future__ import annotations

from credit_core.dlq.records import parse_dead_letter
from credit_core.messages.dead_letter import dead_letter
from dashboard import deadletters
from dashboard.deadletters import DeadLetterStore


def dlq_message(offset: int, *, app_id: int | None, stage: str = "filter", reason: str = "invalid applicant",
                original: bytes = b'{"applicant": {"dti": "12.x5"}}', applicant=None):
    _, key, value = dead_letter(stage=stage, reason=reason, errors=[{"field": "dti", "reason": "has letters"}],
                                original=original, key=str(app_id).encode() if app_id else b"?",
                                src={"topic": "applicants.raw", "partition": 1, "offset": 40 + offset,
                                     "timestamp_ms": 1_700_000_000_000},
                                app_id=app_id, partitions=4, max_original=16, applicant=applicant)
    return parse_dead_letter(topic="applicants.dlq", partition=2, offset=offset, timestamp=1_700_000_000_500,
                             key=key, value=value)


def test_a_dead_letter_in_full():
    dl = dlq_message(7, app_id=123)
    out = deadletters.detail(dl)
    assert out["id"] == 123 and out["stage"] == "filter" and out["reason"] == "invalid applicant"
    assert out["first_error"] == "dti: has letters" and out["errors"] == [{"field": "dti", "reason": "has letters"}]
    assert out["original_text"] == '{"applicant": {"' and out["original_truncated"] is True   # cut to 16 bytes
    assert out["original_size"] == len(b'{"applicant": {"dti": "12.x5"}}')
    assert out["source"]["topic"] == "applicants.raw" and out["source"]["offset"] == 47
    assert out["dlq"] == {"partition": 2, "offset": 7} and out["attempt"] == 1


def test_an_unreadable_record_is_shown_as_such():
    dl = parse_dead_letter(topic="applicants.dlq", partition=0, offset=3, key=None, value=b"\xff garbage")
    out = deadletters.detail(dl)
    assert out["reason"] == deadletters.UNREADABLE and out["stage"] == "?" and out["id"] is None
    assert "garbage" in out["original_text"] and out["problem"]


def test_the_store_counts_keeps_the_latest_and_indexes_ids():
    store = DeadLetterStore(keep=3, index_max=2)
    for offset, (app_id, stage, reason) in enumerate([(1, "filter", "invalid applicant"),
                                                       (2, "filter", "invalid applicant"),
                                                       (1, "submit", "decision cannot be sent"),
                                                       (None, "filter", "not JSON"),
                                                       (3, "filter", "not JSON")]):
        store.add(dlq_message(offset, app_id=app_id, stage=stage, reason=reason), now=float(offset))
    assert store.groups() == [{"stage": "filter", "reason": "invalid applicant", "count": 2},
                              {"stage": "filter", "reason": "not JSON", "count": 2},
                              {"stage": "submit", "reason": "decision cannot be sent", "count": 1}]
    assert [d.offset for d in store.latest(10)] == [4, 3, 2]            # newest first, 3 kept
    summaries, whole = store.for_id(1)
    assert [s["stage"] for s in summaries] == ["filter", "submit"] and [d.offset for d in whole] == [2]
    summaries, whole = store.for_id(3)                   # the index holds 2 ids at most: 3 is only among the latest
    assert summaries == [] and [d.offset for d in whole] == [4]
    assert store.index_full and store.status.records == 5
    store.reset()
    assert store.groups() == [] and store.latest(5) == [] and store.status.records == 0


def test_the_store_keeps_only_what_it_shows_of_a_large_original():
    store = DeadLetterStore(keep=2, index_max=10)
    big = b'{"applicant": {"emp_title": "' + b"x" * 100_000 + b'"}}'
    _, key, value = dead_letter(stage="filter", reason="payload too large", errors=[], original=big, key=b"5",
                                src={}, app_id=5, partitions=1, max_original=1 << 20)
    store.add(parse_dead_letter(topic="applicants.dlq", partition=0, offset=0, key=key, value=value), now=0.0)
    kept = store.latest(1)[0]
    assert len(kept.original) == deadletters.PREVIEW_BYTES and kept.original_size == len(big)
    assert deadletters.detail(kept)["original_size"] == len(big)
