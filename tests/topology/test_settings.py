"""Settings from the environment."""

from __future__ import annotations

import pytest

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
                {"KAFKA_BROKER": "http://127.0.0.1:9092"}, {"FAUST_WEB_ENABLED": "maybe"},
                {"RISK_API_URL": "x:1"}, {"HBASE_PORT": "0"}):
        with pytest.raises(ValueError):
            Settings.from_env(env)


def test_broker_addresses_are_one_parser_and_faust_gets_a_url():
    assert Settings.from_env({"KAFKA_BROKER": "127.0.0.1:9092"}).broker == "kafka://127.0.0.1:9092"
    assert Settings.from_env({"KAFKA_BROKER": "aiokafka://h1:1;h2:2"}).broker == "aiokafka://h1:1;h2:2"
    from topology.topics import bootstrap_of
    assert bootstrap_of("kafka://h1:1;h2:2/") == "h1:1,h2:2"


def test_hbase_is_the_nested_hbase_settings():
    s = Settings.from_env({"HBASE_HOST": "hb", "HBASE_PORT": "9095", "HBASE_TABLE_PREFIX": "t1"})
    assert (s.hbase.host, s.hbase.port, s.hbase.table_prefix) == ("hb", 9095, "t1")


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
