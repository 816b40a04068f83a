"""The settings helper: parsing, errors naming the variable, deprecated names, secrets, nesting; one name per variable."""

from __future__ import annotations

import importlib
import logging
import warnings
from dataclasses import dataclass, FrozenInstanceError

import pytest

from credit_core.broker import KafkaSettings, bootstrap_servers
from credit_core.config import (ConfigError, Settings, boolean, choice, comma_list, describe, integer, nested,
                                number, own_specs, positive, setting, text, url)

# Every module that declares settings classes; a new one belongs here.
SETTINGS_MODULES = ("credit_core.broker", "credit_core.tokens", "hbase_helper.settings", "producer.settings",
                    "applicant_api.settings", "risk_api.settings", "topology.settings", "topology.policy")


@dataclass(frozen=True, kw_only=True)
class Inner(Settings):
    host: str = setting("T_INNER_HOST", "localhost", parse=text(nonempty=True))
    port: int = setting("T_INNER_PORT", 1, parse=integer(min=1, max=65535))


@dataclass(frozen=True, kw_only=True)
class Example(Settings):
    count: int = setting("T_COUNT", 4, parse=integer(min=1))
    rate: float = setting("T_RATE", 0.5, parse=positive())
    share: float = setting("T_SHARE", 0.0, parse=number(min=0, max=1))
    flag: bool = setting("T_FLAG", False, parse=boolean())
    mode: str = setting("T_MODE", "a", parse=choice("a", "b"))
    endpoint: str = setting("T_URL", "http://x:1", parse=url(strip_slash=True))
    items: tuple = setting("T_ITEMS", ("x",), parse=comma_list(str.upper), empty=True)
    topic: str = setting("T_TOPIC", "raw", deprecated=("T_OLD_TOPIC",))
    password: str | None = setting("T_PASSWORD", None, secret=True)
    inner: Inner = nested(Inner)

    def validate(self) -> None:
        if self.flag and self.mode == "b":
            raise ConfigError("T_FLAG cannot be on with T_MODE=b")


def test_defaults_environment_and_parsing():
    assert Example.from_env({}) == Example()
    s = Example.from_env({"T_COUNT": " 8 ", "T_RATE": "2", "T_SHARE": "1", "T_FLAG": "Yes", "T_MODE": "A",
                          "T_URL": "https://h:2//", "T_ITEMS": "a, b,,c", "T_INNER_PORT": "80"})
    assert (s.count, s.rate, s.share, s.flag, s.mode, s.endpoint, s.items) == (
        8, 2.0, 1.0, True, "a", "https://h:2", ("A", "B", "C"))
    assert s.inner == Inner(port=80)
    assert Example.from_env({"T_COUNT": "", "T_ITEMS": ""}).items == ()  # blank: unset, unless empty=True


@pytest.mark.parametrize("env, message", [
    ({"T_COUNT": "x"}, "T_COUNT must be an integer >= 1, got 'x'"),
    ({"T_COUNT": "1_000"}, "T_COUNT must be an integer >= 1, got '1_000'"),
    ({"T_COUNT": "0"}, "T_COUNT must be >= 1, got 0"),
    ({"T_RATE": "0"}, "T_RATE must be > 0, got 0.0"),
    ({"T_RATE": "nan"}, "T_RATE must be > 0, got nan"),
    ({"T_SHARE": "2"}, "T_SHARE must be in 0..1, got 2.0"),
    ({"T_FLAG": "maybe"}, "T_FLAG must be one of on/off"),
    ({"T_MODE": "c"}, "T_MODE must be one of a, b, got 'c'"),
    ({"T_URL": "ftp://h"}, "T_URL must be an http(s) URL, got 'ftp://h'"),
    ({"T_INNER_PORT": "70000"}, "T_INNER_PORT must be in 1..65535, got 70000"),
    ({"T_FLAG": "on", "T_MODE": "b"}, "T_FLAG cannot be on with T_MODE=b"),
])
def test_errors_are_config_errors_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as info:
        Example.from_env(env)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


def test_overrides_win_and_are_checked_like_the_environment():
    s = Example.from_env({"T_COUNT": "8"}, count=2, rate=None, inner={"port": 9})
    assert (s.count, s.rate, s.inner.port) == (2, 0.5, 9)
    assert Example.from_env({}, inner=Inner(host="h")).inner.host == "h"
    with pytest.raises(ConfigError, match="T_COUNT must be >= 1"):
        Example.from_env({}, count=0)
    with pytest.raises(TypeError, match="T_COUNT must be an integer"):
        Example(count="4")
    with pytest.raises(TypeError, match="unknown Example settings: nope"):
        Example.from_env({}, nope=1)
    with pytest.raises(TypeError):
        Example(4)  # keyword-only
    s = Example()
    with pytest.raises(FrozenInstanceError):
        s.count = 5
    assert s.with_(count=3).count == 3
    with pytest.raises(ConfigError):
        s.with_(count=-1)


def test_deprecated_name_works_with_a_warning_and_the_new_name_wins(caplog):
    with pytest.warns(DeprecationWarning, match="T_OLD_TOPIC is deprecated: set T_TOPIC instead"):
        assert Example.from_env({"T_OLD_TOPIC": "old"}).topic == "old"
    with caplog.at_level(logging.WARNING), pytest.warns(DeprecationWarning, match="ignored"):
        assert Example.from_env({"T_OLD_TOPIC": "old", "T_TOPIC": "new"}).topic == "new"
    assert "T_OLD_TOPIC" in caplog.text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Example.from_env({"T_TOPIC": "new"}).topic == "new"


def test_secrets_never_appear_in_the_repr():
    s = Example.from_env({"T_PASSWORD": "s3cret-value"})
    assert s.password == "s3cret-value" and "s3cret" not in repr(s) and "s3cret" not in str(s)


def test_describe_lists_every_setting_with_nested_ones():
    rows = {d.env: d for d in describe(Example)}
    assert rows["T_COUNT"].default == 4 and rows["T_COUNT"].path == "count" and not rows["T_COUNT"].secret
    assert rows["T_PASSWORD"].secret and rows["T_TOPIC"].deprecated == ("T_OLD_TOPIC",)
    assert rows["T_INNER_PORT"].path == "inner.port"
    assert Example.describe() == list(describe(Example))


def test_bootstrap_parser_takes_what_every_old_parser_took():
    assert bootstrap_servers("kafka://h1:9092,h2:9092") == "h1:9092,h2:9092"
    assert bootstrap_servers("h1:9092") == "h1:9092"
    assert bootstrap_servers("aiokafka://h1:1;h2:2/") == "h1:1,h2:2"
    assert bootstrap_servers("kafka://h1:1;kafka://h2:2") == "h1:1,h2:2"
    for bad in ("", "http://h:1", "h1", "kafka://", "kafka://h:x", "h:1,h2"):
        with pytest.raises(ValueError, match="KAFKA_BROKER"):
            bootstrap_servers(bad)
    assert KafkaSettings.from_env({"KAFKA_BROKER": "h:1"}).broker == "kafka://h:1"
    assert KafkaSettings.from_env({}).bootstrap == "127.0.0.1:9092"
    with pytest.raises(ConfigError, match="KAFKA_BROKER must be kafka://host:port"):
        KafkaSettings.from_env({"KAFKA_BROKER": "http://h:1"})


def _settings_classes() -> list[type]:
    for name in SETTINGS_MODULES:
        importlib.import_module(name)
    found, todo = [], list(Settings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not cls.__module__.startswith("tests."):
            found.append(cls)
    return found


def test_every_variable_is_declared_in_exactly_one_place():
    classes = _settings_classes()
    assert {"ProducerSettings", "HBaseSettings", "RiskSettings", "KafkaSettings", "PolicySettings"} <= {
        c.__name__ for c in classes}
    declared: dict[str, set[int]] = {}
    where: dict[str, set[str]] = {}
    for cls in classes:
        for spec in own_specs(cls):
            declared.setdefault(spec.env, set()).add(id(spec))
            where.setdefault(spec.env, set()).add(f"{cls.__module__}.{cls.__name__}")
    twice = {env: sorted(where[env]) for env, ids in declared.items() if len(ids) > 1}
    assert not twice, f"declared more than once (share one Spec instead): {twice}"
    specs = {id(spec): spec for cls in classes for spec in own_specs(cls)}.values()
    aliases = [old for spec in specs for old in spec.deprecated]
    assert len(aliases) == len(set(aliases)) and not set(aliases) & set(declared)
    for shared in ("KAFKA_BROKER", "RISK_API_TOKEN", "APPLICANT_API_TOKEN", "HBASE_HOST", "TOPIC_RAW"):
        assert shared in declared


def test_the_project_settings_hide_their_secrets():
    secret = {d.env for cls in _settings_classes() for d in describe(cls) if d.secret}
    assert {"RISK_API_TOKEN", "APPLICANT_API_TOKEN", "RISK_ADMIN_TOKEN", "MYSQL_URL"} <= secret


def test_the_producers_old_raw_topic_name_still_works_for_one_release():
    from producer.settings import load_settings

    with pytest.warns(DeprecationWarning, match="RAW_TOPIC is deprecated: set TOPIC_RAW instead"):
        assert load_settings(environ={"RAW_TOPIC": "old"}).topic == "old"
    with pytest.warns(DeprecationWarning):
        assert load_settings(environ={"RAW_TOPIC": "old", "TOPIC_RAW": "new"}).topic == "new"
