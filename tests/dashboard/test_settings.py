"""The dashboard's settings and its token scheme (pure)."""

from __future__ import annotations

import pytest

from credit_core.config import ConfigError
from dashboard import auth
from dashboard.settings import load_settings
from dashboard.targets import Target, health_url, parse_targets

TOKEN = "s3cret-token-for-tests"


def test_targets_are_name_url_pairs_and_workers_have_a_health_url():
    targets = parse_targets(" risk-api=http://127.0.0.1:5002/metrics, worker-1=http://h:6067/metrics ,")
    assert targets == (Target("risk-api", "http://127.0.0.1:5002/metrics"), Target("worker-1", "http://h:6067/metrics"))
    assert targets[0].health_url is None and targets[1].health_url == "http://h:6067/health"
    assert health_url("http://h:1/x/metrics") == "http://h:1/x/health"
    assert parse_targets("") == ()
    for bad in ("risk-api", "Risk=http://h:1/metrics", "a=ftp://h/metrics", "a=http://h:1/m?x=1",
                "a=http://h:1/m,a=http://h:2/m"):
        with pytest.raises(ValueError):
            parse_targets(bad)


def test_settings_need_a_token_and_read_the_environment():
    with pytest.raises(ConfigError, match="DASHBOARD_TOKEN is not set"):
        load_settings(environ={})
    with pytest.raises(ConfigError, match="at least 8"):
        load_settings(environ={"DASHBOARD_TOKEN": "short"})
    s = load_settings({"DASHBOARD_TARGETS": "w=http://h:1/metrics"},
                      environ={"DASHBOARD_TOKEN": TOKEN, "KAFKA_BROKER": "h:9", "TOPIC_DLQ": "dead",
                               "HBASE_PORT": "19090", "DASHBOARD_PORT": "5999"})
    assert (s.port, s.topic_dlq, s.kafka.bootstrap, s.hbase.port) == (5999, "dead", "h:9", 19090)
    assert s.targets == (Target("w", "http://h:1/metrics"),)
    assert TOKEN not in repr(s)                                   # a secret stays out of logs
    with pytest.raises(ConfigError, match="DASHBOARD_TARGETS"):
        load_settings(environ={"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_TARGETS": "nonsense"})
    assert load_settings(environ={"DASHBOARD_TOKEN": TOKEN}).port == 5003


def test_a_missing_chartjs_is_a_clear_error(tmp_path):
    s = load_settings(environ={"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_CHARTJS": str(tmp_path / "none.js")})
    with pytest.raises(ConfigError, match="libjs-chart.js"):
        s.chartjs_path()
    assert load_settings(environ={"DASHBOARD_TOKEN": TOKEN}).chartjs_path().is_file()


def test_sessions_are_signed_with_the_token_and_expire():
    value = auth.make_session(TOKEN, now=1000.0, lifetime=60)
    assert TOKEN not in value
    assert auth.valid_session(TOKEN, value, now=1059.0)
    assert not auth.valid_session(TOKEN, value, now=1061.0)                     # expired
    assert not auth.valid_session("another-token-x", value, now=1001.0)       # a new token ends every session
    expiry, nonce, sig = value.split(".")
    assert not auth.valid_session(TOKEN, f"{int(expiry) + 9999}.{nonce}.{sig}", now=1001.0)   # tampered
    for bad in (None, "", "x", "1.2", "a.b.c", "9" * 300):
        assert not auth.valid_session(TOKEN, bad, now=0)
    assert auth.make_session(TOKEN, 0, 60) != auth.make_session(TOKEN, 0, 60)


def test_bearer_and_form_tokens():
    assert auth.valid_bearer(TOKEN, f"Bearer {TOKEN}") and auth.valid_bearer(TOKEN, f"bearer  {TOKEN} ")
    for bad in (None, "", TOKEN, f"Basic {TOKEN}", "Bearer ", f"Bearer {TOKEN}x"):
        assert not auth.valid_bearer(TOKEN, bad)
    assert auth.valid_token(TOKEN, TOKEN) and not auth.valid_token(TOKEN, "") and not auth.valid_token(TOKEN, "x")


def test_failed_logins_are_throttled_per_client():
    throttle = auth.LoginThrottle(limit=3, window=60)
    for i in range(3):
        assert not throttle.blocked("a", now=i)
        throttle.failed("a", now=i)
    assert throttle.blocked("a", now=10) and not throttle.blocked("b", now=10)
    assert not throttle.blocked("a", now=70)                                  # a minute later
