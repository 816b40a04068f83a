"""credit_core.dlq.records: the DeadLetter view of what the stages write, whatever bytes the topic holds, and
the pure filters and counts over dead letters."""

from __future__ import annotations

import base64
import datetime as dt
import json

import orjson
import pytest
from hypothesis import given, strategies as st

from credit_core.dlq.records import (DeadLetter, Selection, parse_coordinates, parse_dead_letter, parse_time,
                                     reason_has, select, stage_is, stats, within)
from credit_core.messages.dead_letter import dead_letter, item_dead_letter

PARTITIONS = 4
SRC = {"topic": "applicants.raw", "partition": 2, "offset": 40, "timestamp_ms": 1_700_000_000_000}


def view(value, *, partition=1, offset=9, key=None, timestamp=1_700_000_000_500, headers=()) -> DeadLetter:
    return parse_dead_letter(topic="applicants.dlq", partition=partition, offset=offset, timestamp=timestamp,
                             key=key, value=value, headers=headers)


def letter(**kw) -> DeadLetter:
    """A dead letter as the filter stage writes it (credit_core.messages.dead_letter), read back."""
    args = dict(stage="filter", reason="invalid applicant", errors=[{"field": "dti", "reason": "letters"}],
                original=b'{"applicant": {"id": "5", "dti": "1x"}}', key=b"5", src=SRC, app_id=5,
                partitions=PARTITIONS, max_original=1 << 16)
    args.update(kw)
    _, dkey, value = dead_letter(**args)
    return view(value, key=dkey)


def test_a_filter_dead_letter_reads_back_whole():
    dl = letter()
    assert dl.readable and dl.problem is None
    assert (dl.stage, dl.reason, dl.errors, dl.app_id) == ("filter", "invalid applicant", (("dti", "letters"),), 5)
    assert dl.original == b'{"applicant": {"id": "5", "dti": "1x"}}' and dl.original_key == b"5"
    assert dl.original_complete and dl.sha256_ok is True and dl.original_text is not None
    assert dict(dl.source) == SRC and dl.attempt == 1 and dl.replayed_from is None
    assert dl.coordinates == "applicants.dlq/1/9" and dl.position == "1:9"
    assert dl.time_ms == dl.failed_at and dl.failed_at > 0
    assert "applicants.raw partition 2 offset 40" in dl.came_from()


def test_a_replayed_records_dead_letter_says_its_attempt_and_where_it_was_replayed_from():
    dl = letter(src={**SRC, "attempt": 2, "replayed_from": "applicants.dlq/0/3", "replay_run": "r1"})
    assert (dl.attempt, dl.replayed_from, dl.replay_run) == (2, "applicants.dlq/0/3", "r1")


def test_a_cut_original_is_marked_and_not_checked():
    dl = letter(original=b"x" * 100, max_original=10)
    assert dl.original == b"x" * 10 and dl.original_size == 100 and dl.original_truncated
    assert not dl.original_complete and dl.sha256_ok is None


def test_binary_originals_export_as_base64_and_text_as_text():
    dl = letter(original=b"\xff\xfe garbage", key=b"\xff\x01")
    out = dl.to_json(status="new")
    assert out["original_encoding"] == "base64" and base64.b64decode(out["original"]) == b"\xff\xfe garbage"
    assert out["original_key_encoding"] == "base64" and out["status"] == "new"
    text = letter().to_json()
    assert text["original_encoding"] == "utf-8" and text["original"].startswith('{"applicant"')
    json.dumps(out), json.dumps(text)


def test_an_item_dead_letter_keeps_the_items_provenance_as_its_source():
    item = {"id": 7, "applicant": {"id": 7, "grade": "B"}, "ingested_at": 1,
            "provenance": {**SRC, "seq": 3, "source": "mysql", "attempt": 2, "replayed_from": "d/1/1"}}
    _, _, value = item_dead_letter(stage="submit", item=item, reason="risk API rejected the request",
                                   errors=[{"field": "$", "reason": "HTTP 413"}], partitions=PARTITIONS,
                                   max_original=1 << 16, applicant=item["applicant"])
    dl = view(value)
    assert dl.stage == "submit" and dl.app_id == 7 and dl.attempt == 2 and dl.source["seq"] == 3
    assert orjson.loads(dl.original) == item and dl.applicant == item["applicant"]


def test_a_minimal_record_is_read_as_one():
    dl = letter(src={**SRC, "extra": 2**70, "attempt": 3}, max_original=4)
    assert dl.readable and dl.minimal and dl.attempt == 3 and dl.original == dl.original[:4]
    assert "could not be written" in dl.errors[0][1]


@pytest.mark.parametrize("value, problem", [
    (None, "no value"), (b"", "no value"), (b"\xff\x00", "not JSON"), (b"[1, 2]", "a JSON list"),
    (b'"text"', "a JSON str"), (b'{"reason": "no stage"}', None)])
def test_records_that_are_not_dead_letters_are_unreadable_with_the_problem(value, problem):
    dl = view(value)
    assert not dl.readable
    if problem:
        assert problem in dl.problem
    assert dl.value == value or (value is None and dl.value is None)


def test_ids_beyond_64_bits_and_bad_base64_do_not_break_the_view():
    dl = view(b'{"stage": "filter", "reason": "r", "id": 18446744073709551616, "original": "***", '
              b'"source": {"attempt": 99999999999}, "failed_at": -5}')
    assert dl.readable and dl.app_id is None and dl.original == b"" and "not base64" in dl.problem
    assert dl.attempt == 1 and dl.failed_at is None and dl.time_ms == 1_700_000_000_500


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=10),
                                     st.floats(allow_nan=False, allow_infinity=False)),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=8)
FIELDS = ["id", "stage", "reason", "errors", "original", "original_size", "original_truncated", "original_sha256",
          "key", "source", "failed_at", "applicant", "minimal"]


@given(st.one_of(st.none(), st.binary(max_size=200)), st.one_of(st.none(), st.binary(max_size=20)),
       st.one_of(st.none(), st.integers(-(2**64), 2**64)),
       st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=5)), max_size=3))
def test_arbitrary_bytes_never_crash_the_parser(value, key, timestamp, headers):
    dl = view(value, key=key, timestamp=timestamp, headers=headers)
    assert dl.readable is False or isinstance(dl.stage, str)
    json.dumps(dl.to_json(), default=str)


@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10), st.dictionaries(
    st.sampled_from(["attempt", "replayed_from", "replay_run", "topic", "offset"]), json_values, max_size=4))
def test_arbitrary_dead_letter_shaped_json_never_crashes_the_parser(fields, source):
    fields["source"] = source
    dl = view(json.dumps(fields).encode())
    assert dl.attempt >= 1 and isinstance(dl.errors, tuple) and isinstance(dl.original, bytes)
    assert dl.app_id is None or 1 <= dl.app_id < 2**63
    json.dumps(dl.to_json(), default=str)
    Selection(stages=frozenset({"filter"}), reasons=("x",), since_ms=0, until_ms=10**13).matches(dl)


# -- filters ---------------------------------------------------------------------------------------------------

def make(stage, reason, at, *, partition=0, offset=0, app_id=None, errors=()) -> DeadLetter:
    return DeadLetter(topic="d", partition=partition, offset=offset, readable=True, stage=stage, reason=reason,
                      failed_at=at, app_id=app_id, errors=errors)


def test_stage_reason_and_time_filters():
    dl = make("Submit", "risk API rejected the request", 1000, errors=(("$", "HTTP 413: body too large"),))
    assert stage_is(dl, ["submit"]) and stage_is(dl, []) and not stage_is(dl, ["filter", "save"])
    assert reason_has(dl, ["RISK api"]) and reason_has(dl, ["413"]) and not reason_has(dl, ["not JSON"])
    assert within(dl, 1000, 1001) and not within(dl, 1001, None) and not within(dl, None, 1000)
    unknown = DeadLetter(topic="d", partition=0, offset=0)
    assert within(unknown, None, None) and not within(unknown, 0, None)


def test_a_selection_is_the_chosen_ones_that_pass_every_filter():
    a = make("filter", "not JSON", 30, partition=1, offset=5, app_id=11)
    b = make("submit", "risk API rejected the request", 10, partition=2, offset=1, app_id=12)
    c = make("filter", "invalid applicant", 20, partition=2, offset=2, app_id=None)
    assert select([a, b, c], Selection()) == [b, c, a]                      # oldest first
    assert select([a, b, c], Selection(stages=frozenset({"filter"}))) == [c, a]
    assert select([a, b, c], Selection(ids=frozenset({12}), positions=frozenset({(1, 5)}))) == [b, a]
    assert select([a, b, c], Selection(positions=frozenset({(1, 5)}), stages=frozenset({"submit"}))) == []
    assert select([a, b, c], Selection(reasons=("invalid", "json"), since_ms=25)) == [a]
    assert not Selection().chooses and Selection(until_ms=5).chooses


def test_parse_time_forms():
    now = 1_700_000_000_000
    assert parse_time("now", now) == now
    assert parse_time("15m", now) == now - 15 * 60_000 and parse_time("2 h", now) == now - 7_200_000
    assert parse_time("7d", now) == now - 7 * 86_400_000
    assert parse_time("2024-05-01T12:00:00Z", now) == int(dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
                                                          .timestamp() * 1000)
    assert parse_time("2024-05-01", now) == parse_time("2024-05-01T00:00:00+00:00", now)
    assert parse_time("2024-05-01T14:00:00+02:00", now) == parse_time("2024-05-01T12:00:00", now)
    assert parse_time("1700000000123", now) == 1700000000123
    for bad in ("yesterday", "15x", "", "2024-13-01", "-5m"):
        with pytest.raises(ValueError, match="not a time"):
            parse_time(bad, now)


def test_coordinates_parse_back():
    assert parse_coordinates("applicants.dlq/2/17") == ("applicants.dlq", 2, 17)
    assert parse_coordinates("dlq-ab12/0/0") == ("dlq-ab12", 0, 0)
    for bad in ("2:17", "d/2", "/1/2", "d/x/1", "d/1/-1", None):
        assert parse_coordinates(bad) is None


def test_stats_count_by_stage_reason_attempt_and_status():
    a = make("filter", "not JSON", 30, offset=1, app_id=1)
    b = make("filter", "not JSON", 10, offset=2)
    c = DeadLetter(topic="d", partition=0, offset=3, readable=True, stage="submit", reason="risk", failed_at=20,
                   attempt=2, app_id=3, original_truncated=True)
    out = stats([a, b, c], {"d/0/1": "replayed"})
    assert out["total"] == 3 and out["by_stage"] == {"filter": 2, "submit": 1}
    assert out["by_reason"][0] == {"stage": "filter", "reason": "not JSON", "count": 2}
    assert out["by_attempt"] == {"1": 2, "2": 1} and out["without_id"] == 1 and out["original_truncated"] == 1
    assert (out["first_failed_at"], out["last_failed_at"]) == (10, 30)
    assert out["by_status"] == {"new": 2, "replayed": 1}
    assert stats([])["total"] == 0 and stats([])["first_failed_at"] is None
