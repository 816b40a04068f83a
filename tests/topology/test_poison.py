"""Hostile input through every stage's batch function: each message or item ends in exactly one output, nothing raises.

Values, keys, headers and timestamps come from hypothesis: arbitrary bytes,
JSON nested past what orjson writes (254), numbers past 64 bits, ids and
sequences in non-ASCII digits, envelopes of the wrong shape; valid applicants
are mixed in so the good path is exercised beside the bad.  The submit stage
talks to the real risk API (gunicorn), the save stage to the HBase server.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, given, settings, strategies as st

from topology.stages.batching import MAX_MESSAGE_BYTES, record_source
from topology.stages.cleaning import clean_batch
from topology.stages.scoring import score_batch
from topology.stages.screening import screen_batch
from topology.policy import Policy
from deploy.services import wait_for
from topology.risk_client import RiskClient
from tests.factories import clean_applicant, raw_applicant

PARTITIONS = 4
MAX_ORIGINAL = 256
TOPIC = "applicants.raw"

# -- strategies ----------------------------------------------------------------

ODD_NUMBERS = ["9007199254740993", "18446744073709551616", "1" * 30, "²", "١٢", "１２", "1_000", "-5", " 7 ",
               "1e400", "NaN", "", "0", "9223372036854775807", "9223372036854775808"]


def json_object(fields: dict[str, str]) -> str:
    """A JSON object from names and raw JSON texts (which may be what no encoder writes: deep, huge numbers)."""
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


def deep(n: int) -> str:
    return "[" * n + "1" + "]" * n


json_leaf = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=20), st.sampled_from(ODD_NUMBERS))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
# Raw JSON text fragments, for what a JSON encoder cannot make (deep nesting, huge integers as numbers).
raw_fragment = st.one_of(json_value.map(json.dumps), st.integers(250, 400).map(deep),
                         st.sampled_from(["18446744073709551616", "9007199254740995", "1" * 30, "-1", "1e400"]))

FIELDS = sorted(raw_applicant(1))


@st.composite
def raw_values(draw):
    """A raw message value: a valid envelope, one with a field or the provenance broken, or any bytes."""
    kind = draw(st.sampled_from(["valid", "field", "id", "seq", "bare", "bytes", "json"]))
    app_id = draw(st.integers(1, 10**6))
    applicant = raw_applicant(app_id)
    if kind == "bytes":
        return draw(st.one_of(st.none(), st.binary(max_size=64)))
    if kind == "json":
        return json.dumps(draw(json_value)).encode()
    fields = {k: json.dumps(v) for k, v in applicant.items()}
    if kind == "field":
        fields[draw(st.sampled_from(FIELDS))] = draw(raw_fragment)
    if kind == "id":
        fields["id"] = draw(st.one_of(raw_fragment, st.sampled_from(ODD_NUMBERS).map(json.dumps)))
    body = json_object(fields)
    if kind == "bare":
        return body.encode()
    seq = draw(raw_fragment) if kind == "seq" else str(app_id)
    return ('{"applicant":' + body + ',"provenance":{"source":"hypothesis","seq":' + seq + "}}").encode()


keys = st.one_of(st.none(), st.binary(max_size=32), st.integers(1, 10**6).map(lambda i: str(i).encode()),
                 st.sampled_from([b"1234567890123456789012345", "²".encode(), "١".encode(), b"18446744073709551616"]))
timestamps = st.one_of(st.just(-1), st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**41))
headers = st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=16)), max_size=3).map(tuple)


@st.composite
def raw_records(draw):
    n = draw(st.integers(1, 12))
    return [ConsumerRecord(topic=TOPIC, partition=draw(st.integers(0, PARTITIONS - 1)), offset=i,
                           timestamp=draw(timestamps), timestamp_type=0, key=draw(keys), value=draw(raw_values()),
                           checksum=None, serialized_key_size=-1, serialized_value_size=-1, headers=draw(headers))
            for i in range(n)]


# -- checks ------------------------------------------------------------------

def check_messages(messages):
    """Every output is a (partition, key, value) a producer can send."""
    for partition, key, value in messages:
        assert 0 <= partition < PARTITIONS
        assert key is None or isinstance(key, bytes)
        assert isinstance(value, bytes) and len(value) <= MAX_MESSAGE_BYTES


def dead_letters(dead, stage):
    check_messages(dead)
    records = [orjson.loads(v) for _, _, v in dead]
    for rec in records:
        assert rec["stage"] == stage and rec["reason"] and "original" in rec and "source" in rec
    return records


def items_of(messages):
    check_messages(messages)
    return [item for _, _, v in messages for item in orjson.loads(v)]


# -- filter ------------------------------------------------------------------

@settings(max_examples=400, deadline=None, derandomize=True)
@given(raw_records())
def test_filter_accounts_for_every_raw_message(records):
    msgs = [record_source(r) for r in records]
    tally = Counter()
    clean, dead, kept = clean_batch(msgs, partitions=PARTITIONS, max_bytes=200_000, max_original=MAX_ORIGINAL,
                                     per_message=3, tally=tally)
    items = items_of(clean)
    letters = dead_letters(dead, "filter")
    assert kept == len(items)
    assert tally == Counter({("clean", ""): kept})     # what the worker's metrics count
    seen = Counter([i["provenance"]["offset"] for i in items] + [d["source"]["offset"] for d in letters])
    assert seen == Counter(r.offset for r in records), "each raw message ends exactly once"
    for item in items:
        assert 1 <= item["id"] < 2**63 and item["provenance"]["timestamp_ms"] >= 0
        seq = item["provenance"]["seq"]
        assert seq is None or 0 <= seq < 2**63


@pytest.mark.parametrize("value", [
    b"garbage", deep(300).encode(), b'{"id": 18446744073709551616}', b'{"id": "18446744073709551616"}',
    b'{"id": "\xc2\xb2"}', b'{"applicant": {"id": "5"}, "provenance": {"seq": "' + b"1" * 30 + b'"}}',
    b'{"applicant": {"id": "5", "emp_title": ' + deep(300).encode() + b"}}"])
def test_named_poison_messages_are_dead_lettered_with_a_reason(value):
    key = b"1234567890123456789012345"
    clean, dead, kept = clean_batch([(key, value, {"topic": TOPIC, "partition": 1, "offset": 9, "timestamp_ms": 5})],
                                     partitions=PARTITIONS, max_bytes=200_000, max_original=MAX_ORIGINAL, per_message=1)
    assert not clean and kept == 0
    [letter] = dead_letters(dead, "filter")
    assert letter["source"]["offset"] == 9 and letter["reason"] != "internal error"
    assert letter["id"] is None or 1 <= letter["id"] < 2**63


def test_superscript_id_is_a_field_error_not_an_internal_error():
    value = json.dumps({"applicant": {**raw_applicant(5), "id": "²"}}).encode()
    _, dead, _ = clean_batch([(b"\xc2\xb2", value, {"topic": TOPIC, "partition": 0, "offset": 1, "timestamp_ms": 1})],
                              partitions=PARTITIONS, max_bytes=200_000, max_original=MAX_ORIGINAL, per_message=1)
    [letter] = dead_letters(dead, "filter")
    assert letter["reason"] == "invalid applicant" and letter["id"] is None
    assert any(e["field"] == "id" for e in letter["errors"])


def test_a_negative_timestamp_becomes_the_ingest_time():
    value = json.dumps({"applicant": raw_applicant(5)}).encode()
    clean, dead, _ = clean_batch([(b"5", value, {"topic": TOPIC, "partition": 0, "offset": 1, "timestamp_ms": -1})],
                                  partitions=PARTITIONS, max_bytes=200_000, max_original=MAX_ORIGINAL, per_message=1)
    [item] = items_of(clean)
    assert item["provenance"]["timestamp_ms"] == item["ingested_at"]
    assert item["provenance"]["timestamp_source"] == "ingested"


def test_minimal_dead_letter_when_the_full_one_cannot_be_written():
    from credit_core.messages.dead_letter import dead_letter
    from credit_core.messages.keys import partition_for

    partition, key, value = dead_letter(stage="filter", reason="x", errors=[{"field": "$", "reason": "y"}],
                                        original=b"abc" * 1000, key=b"k", src={"topic": TOPIC, "partition": 2,
                                                                               "offset": 3, "extra": 2**70},
                                        app_id=None, partitions=PARTITIONS, max_original=10)
    rec = orjson.loads(value)
    assert rec["minimal"] is True and rec["stage"] == "filter" and rec["source"]["offset"] == 3
    assert rec["original_size"] == 3000 and rec["original_truncated"] and key == b"k"
    assert partition == partition_for(b"k", PARTITIONS)
    assert "could not be written" in rec["errors"][0]["reason"]


# -- decision and submit: internal messages -------------------------------------------

def clean_item(app_id: int) -> dict:
    return {"id": app_id, "applicant": clean_applicant(app_id),
            "provenance": {"topic": TOPIC, "partition": 0, "offset": app_id, "timestamp_ms": 1, "seq": app_id},
            "ingested_at": 1}


@st.composite
def not_items(draw):
    """Half the time False (build a list of items instead); else any JSON value or any bytes (or no value)."""
    kind = draw(st.sampled_from(["items", "items", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.one_of(st.none(), st.binary(max_size=48)))
    if kind == "json":
        return json.dumps(draw(json_value)).encode()
    return False


@st.composite
def internal_values(draw):
    """An internal message: a list of items, some valid, some broken in one place; or any JSON; or any bytes."""
    other = draw(not_items())
    if other is not False:
        return other
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        item = {k: json.dumps(v) for k, v in clean_item(draw(st.integers(1, 10**6))).items()}
        broken = draw(st.sampled_from([None, None, "id", "applicant", "provenance", "ingested_at", "field"]))
        if broken == "field":
            applicant = {k: json.dumps(v) for k, v in json.loads(item["applicant"]).items()}
            applicant[draw(st.sampled_from(sorted(applicant)))] = draw(raw_fragment)
            item["applicant"] = json_object(applicant)
        elif broken:
            item[broken] = draw(raw_fragment)
        parts.append(json_object(item))
    return ("[" + ",".join(parts) + "]").encode()


def units(value) -> int:
    """How many outcomes a message must give: one per element of a JSON array, else one."""
    try:
        data = orjson.loads(value)
    except Exception:
        return 1
    return len(data) if isinstance(data, list) else 1


@st.composite
def internal_messages(draw):
    n = draw(st.integers(1, 6))
    return [(draw(keys), draw(internal_values()),
             {"topic": "applicants.clean", "partition": draw(st.integers(0, PARTITIONS - 1)), "offset": i,
              "timestamp_ms": draw(timestamps)}) for i in range(n)]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(internal_messages())
def test_decision_accounts_for_every_item(msgs):
    tally = Counter()
    eligible, scored, dead, n = screen_batch(msgs, policy=Policy(), partitions=PARTITIONS,
                                               max_original=MAX_ORIGINAL, per_message=2, tally=tally)
    outcomes = len(items_of(eligible)) + len(items_of(scored)) + len(dead_letters(dead, "decision"))
    assert outcomes == sum(units(v) for _, v, _ in msgs)
    # What the worker's metrics count: eligible items, and declines by their first policy rule.
    declined = Counter(d["reasons"][0]["code"] for d in items_of(scored))
    assert +tally == +Counter({("eligible", ""): len(items_of(eligible)),
                               **{("declined_policy", code): n for code, n in declined.items()}})


@pytest.fixture(scope="module")
def risk_client(risk_api):
    return risk_api


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msgs=internal_messages())
def test_submit_accounts_for_every_item(risk_client, msgs):
    async def run():
        client = RiskClient(risk_client.url, risk_client.extra_env["RISK_API_TOKEN"], timeout=10, retry_base=0.05,
                            retry_cap=0.2)
        try:
            return await score_batch(client, msgs, batch_size=4, per_message=2, policy_version="policy-test",
                                      partitions=PARTITIONS, max_original=MAX_ORIGINAL, tally=tally)
        finally:
            await client.close()

    tally = Counter()
    scored, dead, _ = asyncio.run(run())
    decisions = items_of(scored)
    assert len(decisions) + len(dead_letters(dead, "submit")) == sum(units(v) for _, v, _ in msgs)
    verdicts = Counter(d["decision"] for d in decisions)
    assert +tally == +Counter({("approved", ""): verdicts["approve"], ("declined_model", ""): verdicts["decline"]})
    for dec in decisions:
        assert dec["decided_by"] == "model" and 0 <= dec["probability_of_default"] <= 1


@st.composite
def scored_values(draw):
    """A scored message: decisions (valid, or broken in one key), or any JSON, or any bytes."""
    from credit_core.messages.decision import decision

    other = draw(not_items())
    if other is not False:
        return other
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        dec = decision(clean_item(draw(st.integers(1, 10**6))), verdict="decline", decided_by="policy",
                       reasons=[{"code": "POLICY_GRADE", "text": "grade"}], policy_version="policy-test")
        fields = {k: json.dumps(v) for k, v in dec.items()}
        broken = draw(st.sampled_from([None, None, "id", "applicant", "provenance", "reasons", "decision",
                                       "decided_at", "extra"]))
        if broken:
            fields[broken] = draw(raw_fragment)
        parts.append(json_object(fields))
    return ("[" + ",".join(parts) + "]").encode()


@st.composite
def scored_messages(draw):
    n = draw(st.integers(1, 5))
    return [(draw(keys), draw(scored_values()),
             {"topic": "applicants.scored", "partition": draw(st.integers(0, PARTITIONS - 1)), "offset": i,
              "timestamp_ms": draw(timestamps)}) for i in range(n)]


@pytest.fixture(scope="module")
def hbase_writer(hbase_server):
    from hbase_helper.settings import HBaseSettings
    from hbase_helper.writer import DecisionWriter

    return DecisionWriter(HBaseSettings(host=hbase_server.host, port=hbase_server.port, table_prefix="poison"))


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msgs=scored_messages())
def test_save_accounts_for_every_item(hbase_writer, msgs):
    from concurrent.futures import ThreadPoolExecutor

    from topology.stages.saving import save_batch

    with ThreadPoolExecutor(max_workers=1) as executor:
        tally = Counter()
        events, dead, n = asyncio.run(save_batch(hbase_writer, executor, msgs, chunk=3, partitions=PARTITIONS,
                                                 max_original=MAX_ORIGINAL, base=0.01, cap=0.05, tally=tally))
    check_messages(events)
    saved = [orjson.loads(v) for _, _, v in events]
    assert len(saved) + len(dead_letters(dead, "save")) == sum(units(v) for _, v, _ in msgs)
    assert +tally == +Counter({("saved", ""): len(saved)})
    for event in saved:
        assert event["saved_at"] >= event["decided_at"] and "applicant" not in event


# -- a running worker ----------------------------------------------------------------

def test_poison_between_valid_messages_on_one_partition_does_not_block_them(topology):
    """Poison between valid applicants on partition 0 of applicants.raw (and of .clean): all valid ones arrive."""
    from aiokafka import AIOKafkaProducer

    from deploy.poison import poison_messages
    from tests.topology.messages import envelope
    from topology.topics import ensure_topics

    poison = poison_messages(random.Random(3))
    valid = list(range(1, 4 * len(poison) + 1))
    seq_30 = "1" * 30

    async def produce():
        await ensure_topics(topology.settings)
        p = AIOKafkaProducer(bootstrap_servers=topology.bootstrap, max_request_size=8 << 20)
        await p.start()
        try:
            futs = []
            for n, app_id in enumerate(valid):
                applicant = raw_applicant(app_id)
                value = envelope(applicant, app_id)
                if n % 10 == 3:   # a 30-digit sequence in the envelope does not stop a valid applicant
                    value = value.replace(f'"seq":{app_id}'.encode(), f'"seq":"{seq_30}"'.encode())
                futs.append(await p.send(topology.settings.topic_raw, value, key=str(app_id).encode(), partition=0,
                                         timestamp_ms=None, headers=[("h", b"\x00\xff"), ("", b"")]))
                if n % 4 == 0:
                    kind, key, value = poison[n // 4]
                    futs.append(await p.send(topology.settings.topic_raw, value, key=key, partition=0,
                                             headers=[("\u0000", b"\xff" * 40), ("kind", kind.encode())]))
            # Straight onto the internal topic: a deep item and a huge id beside a valid one.
            good = clean_item(500)
            bad = ('[' + json.dumps(good) + ',{"id": 501, "applicant": ' + deep(300) + '},'
                   '{"id": 18446744073709551616, "applicant": {}}]').encode()
            futs.append(await p.send(topology.settings.topic_clean, bad, key=b"500", partition=0))
            await asyncio.gather(*futs)
        finally:
            await p.stop()

    asyncio.run(produce())
    topology.worker()
    expected = set(valid) | {500}
    poison_count = len(poison)

    def arrived():
        return expected <= set(topology.hbase_ids()) and len(topology.dlq()) >= poison_count + 2

    try:
        wait_for(arrived, 120, interval=1.0, what="valid applicants saved and poison dead-lettered")
    except TimeoutError:
        saved = set(topology.hbase_ids())
        raise AssertionError(f"missing: {sorted(expected - saved)[:10]}, dlq {len(topology.dlq())}\n"
                             f"{topology.logs()}") from None
    dlq = topology.dlq()
    from_raw = [d for d in dlq if d["stage"] == "filter"]
    assert len(from_raw) == poison_count, [d["reason"] for d in from_raw]
    assert all(d["reason"] != "internal error" for d in from_raw)
    from_clean = [d for d in dlq if d["stage"] == "decision"]
    assert len(from_clean) == 2 and all(d["reason"] == "bad internal item" for d in from_clean)
    assert "replaying" not in topology.logs() and "one by one" not in topology.logs()
