"""Settings from the environment, the backoff helper and the codec."""

from __future__ import annotations

import asyncio
import decimal
import random

import pytest

from topology.codec import dumps, loads
from topology.retry import backoff_delays, retry_forever
from topology.settings import Settings, worker_environ


def test_defaults_work_on_the_local_stack():
    s = Settings.from_env({})
    assert s.broker == "kafka://127.0.0.1:9092" and s.partitions == 4 and s.session_timeout == 6.0
    assert (s.topic_raw, s.topic_clean, s.topic_eligible, s.topic_scored, s.topic_decisions, s.topic_dlq) == (
        "applicants.raw", "applicants.clean", "applicants.eligible", "applicants.scored", "decisions",
        "applicants.dlq")
    assert s.risk_api_url == "http://127.0.0.1:5002" and not s.web_enabled


def test_environment_overrides_and_bad_values_are_refused():
    s = Settings.from_env({"TOPIC_PARTITIONS": "8", "FAUST_WEB_ENABLED": "yes", "SUBMIT_BATCH_WITHIN": "0.5",
                           "RISK_API_URL": "http://x:1/", "TOPOLOGY_MODE": "literal"})
    assert s.partitions == 8 and s.web_enabled and s.submit_batch_within == 0.5 and s.literal
    assert s.risk_api_url == "http://x:1"
    for env in ({"TOPIC_PARTITIONS": "four"}, {"TOPIC_PARTITIONS": "0"}, {"TOPOLOGY_MODE": "fast"},
                {"KAFKA_BROKER": "127.0.0.1:9092"}, {"FAUST_WEB_ENABLED": "maybe"}):
        with pytest.raises(ValueError):
            Settings.from_env(env)


def test_gc_thresholds_are_three_positive_ints():
    assert Settings.from_env({}).gc_threshold_values == (20000, 50, 100)
    assert Settings.from_env({"GC_THRESHOLDS": "700,10,10"}).gc_threshold_values == (700, 10, 10)
    for bad in ("700,10", "700,10,x", "0,10,10", "700,10,10,10"):
        with pytest.raises(ValueError, match="GC_THRESHOLDS"):
            Settings.from_env({"GC_THRESHOLDS": bad})


def test_worker_environment_defaults_to_uvloop_unless_told_otherwise():
    assert worker_environ({"A": "1"}) == {"A": "1", "FAUST_LOOP": "uvloop"}
    assert worker_environ({"FAUST_LOOP": "aio"})["FAUST_LOOP"] == "aio"


def test_token_is_not_in_the_repr():
    assert "s3cret" not in repr(Settings.from_env({"RISK_API_TOKEN": "s3cret"}))


def test_backoff_grows_with_jitter_and_stays_under_the_cap():
    delays = [d for d, _ in zip(backoff_delays(0.1, 2.0, random.Random(1)), range(40))]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert max(delays[20:]) > max(delays[:3])
    with pytest.raises(ValueError):
        next(backoff_delays(0, 1))


def test_retry_forever_retries_what_it_is_told_and_nothing_else():
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("down")
        return "ok"
    assert asyncio.run(retry_forever(flaky, what="x", retry_on=(OSError,), base=0.01, cap=0.02)) == "ok"
    assert len(calls) == 3

    async def bug():
        raise KeyError("bug")
    with pytest.raises(KeyError):
        asyncio.run(retry_forever(bug, what="x", retry_on=(OSError,), base=0.01, cap=0.02))


def test_codec_round_trips_and_handles_decimal():
    assert loads(dumps({"a": [1, 2.5, None, "é"]})) == {"a": [1, 2.5, None, "é"]}
    assert loads(dumps({"d": decimal.Decimal("12.39")})) == {"d": 12.39}
    from faust.serializers import codecs
    assert codecs.loads("orjson", codecs.dumps("orjson", {"x": 1})) == {"x": 1}
