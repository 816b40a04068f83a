"""The alert rules (deploy/prometheus/alerts.yml): promtool checks them and runs their unit tests, which make each
alert fire and stay silent."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from deploy.prometheus import RULES_DIR, RULES_FILE

PROMTOOL = "/usr/bin/promtool"
RULE_TESTS = sorted(RULES_DIR.glob("*_test.yml"))
ALERTS = ("StageCrashed", "StageStalledWithLag", "ConsumerLagGrowing", "DeadLetterRateHigh", "ApiServerErrors",
          "HBaseWriteRetries", "TargetDown")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=RULES_DIR)


def alerting_rules() -> list[dict]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules():
    proc = promtool("check", "rules", str(RULES_FILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout, proc.stdout


def test_promtool_rule_unit_tests_pass():
    assert RULE_TESTS, f"no *_test.yml beside {RULES_FILE}"
    proc = promtool("test", "rules", *map(str, RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and "FAILED" not in proc.stdout, proc.stdout


def test_each_alert_has_a_duration_a_severity_and_says_what_and_why():
    rules = alerting_rules()
    assert [rule["alert"] for rule in rules] == list(ALERTS)
    for rule in rules:
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"].strip() and rule["annotations"]["description"].strip(), rule["alert"]


def test_the_unit_tests_make_each_alert_fire_and_stay_silent():
    fired, silent = set(), set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fired == set(ALERTS), f"no firing case for {set(ALERTS) - fired}"
    assert silent == set(ALERTS), f"no silent case for {set(ALERTS) - silent}"


@pytest.fixture()
def weakened_rules(tmp_path):
    """alerts.yml with the DLQ threshold raised from 5% to 50%, beside a copy of the unit tests."""
    text = RULES_FILE.read_text()
    assert text.count("          > 0.05\n") == 1
    (tmp_path / "alerts.yml").write_text(text.replace("          > 0.05\n", "          > 0.5\n"))
    for path in RULE_TESTS:
        (tmp_path / path.name).write_text(path.read_text())
    return tmp_path


def test_the_unit_tests_catch_a_changed_threshold(weakened_rules):
    proc = subprocess.run([PROMTOOL, "test", "rules", *(p.name for p in RULE_TESTS)], capture_output=True,
                          text=True, timeout=120, cwd=weakened_rules)
    assert proc.returncode != 0
    assert "DeadLetterRateHigh" in proc.stdout + proc.stderr
