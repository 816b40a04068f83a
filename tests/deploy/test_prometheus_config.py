"""The generated Prometheus configuration: what it scrapes, how often, with which labels; promtool accepts it."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from deploy.prometheus import RULES_FILE, duration, job_of, render_config, scrape_config
from tests.deploy.stack_testlib import stack_for

PROMTOOL = "/usr/bin/promtool"


def test_each_process_is_a_target_of_its_job_named_by_its_stack_name():
    config = scrape_config({
        "applicant-api": "http://127.0.0.1:5001/metrics",
        "risk-api": "http://127.0.0.1:5002/metrics",
        "producer": "http://127.0.0.1:9464/metrics",
        "worker-1": "http://127.0.0.1:6067/metrics",
        "worker-2": "http://127.0.0.1:6068/metrics",
    }, interval=2)

    assert config["global"] == {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"}
    assert config["rule_files"] == [str(RULES_FILE)]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert list(jobs) == ["applicant-api", "risk-api", "producer", "worker"]
    assert jobs["worker"]["static_configs"] == [
        {"targets": ["127.0.0.1:6067"], "labels": {"instance": "worker-1"}},
        {"targets": ["127.0.0.1:6068"], "labels": {"instance": "worker-2"}},
    ]
    assert jobs["producer"] == {"job_name": "producer", "scheme": "http", "metrics_path": "/metrics",
                                "static_configs": [{"targets": ["127.0.0.1:9464"],
                                                    "labels": {"instance": "producer"}}]}


def test_durations_and_job_names():
    assert [duration(s) for s in (2, 2.0, 1.5, 0.25, 60)] == ["2s", "2s", "1500ms", "250ms", "60s"]
    with pytest.raises(ValueError):
        duration(0)
    assert [job_of(n) for n in ("worker-1", "worker-12", "risk-api", "applicant-api", "producer")] == [
        "worker", "worker", "risk-api", "applicant-api", "producer"]


@pytest.mark.parametrize("url", ["127.0.0.1:5001/metrics", "http://127.0.0.1/metrics", "ftp://h:1/metrics"])
def test_a_metrics_url_without_scheme_host_or_port_is_refused(url):
    with pytest.raises(ValueError, match="worker-1"):
        scrape_config({"worker-1": url})


def test_targets_of_one_job_must_share_their_path():
    with pytest.raises(ValueError, match="worker-2"):
        scrape_config({"worker-1": "http://127.0.0.1:1/metrics", "worker-2": "http://127.0.0.1:2/other"})


def test_the_rendered_file_is_yaml_saying_the_same():
    config = scrape_config({"risk-api": "http://127.0.0.1:5002/metrics"}, interval=1.5)
    assert yaml.safe_load(render_config(config)) == config


def test_the_stack_scrapes_both_apis_the_producer_and_each_worker_at_their_ports(tmp_path):
    env = {"CREDIT_RUN_DIR": str(tmp_path), "WORKERS": "3", "APPLICANT_API_PORT": "15001", "RISK_API_PORT": "15002",
           "PRODUCER_METRICS_PORT": "15464", "WORKER_2_WEB_PORT": "16002", "PROMETHEUS_PORT": "19095",
           "DASHBOARD_PORT": "15003", "STACK": "embedded"}
    stack = stack_for(env)
    expected = {
        "applicant-api": "http://127.0.0.1:15001/metrics",
        "risk-api": "http://127.0.0.1:15002/metrics",
        "producer": "http://127.0.0.1:15464/metrics",
        "worker-1": "http://127.0.0.1:6067/metrics",
        "worker-2": "http://127.0.0.1:16002/metrics",
        "worker-3": "http://127.0.0.1:6069/metrics",
    }
    assert stack.prometheus.targets == expected
    assert stack.prometheus.port == 19095 and stack.dashboard.port == 15003
    assert stack.producer.extra_env["PRODUCER_METRICS_PORT"] == "15464"
    assert [w.extra_env["FAUST_WEB_PORT"] for w in stack.workers] == ["6067", "16002", "6069"]
    assert all(w.extra_env["FAUST_WEB_ENABLED"] == "true" for w in stack.workers)

    dashboard = stack.dashboard.extra_env
    assert dashboard["DASHBOARD_TARGETS"] == ",".join(f"{name}={url}" for name, url in expected.items())
    assert dashboard["DASHBOARD_TOKEN"] == (tmp_path / "dashboard-token.secret").read_text().strip()
    assert stack.dashboard.factory == "dashboard.app:create_app()" and stack.dashboard.workers == 1
    # Only the embedded stack's broker (Tansu) has end offsets not to trust.
    assert stack.producer.extra_env["KAFKA_END_OFFSETS_RELIABLE"] == "false"
    assert "KAFKA_END_OFFSETS_RELIABLE" not in stack_for({**env, "STACK": "apache"}).producer.extra_env

    # Prometheus and the dashboard come after every application; no producer metrics port, no producer target.
    names = [svc.name for svc in stack.services]
    assert names[-2:] == ["prometheus", "dashboard"] and names.index("producer") < names.index("prometheus")
    assert "producer" not in stack_for({**env, "PRODUCER_METRICS_PORT": "0"}).prometheus.targets


def test_a_dashboard_token_from_the_environment_wins(tmp_path):
    stack = stack_for({"CREDIT_RUN_DIR": str(tmp_path), "DASHBOARD_TOKEN": "from-the-shell"})
    assert stack.dashboard.extra_env["DASHBOARD_TOKEN"] == "from-the-shell"
    assert not (tmp_path / "dashboard-token.secret").exists()


def test_promtool_accepts_the_generated_configuration_and_its_rules(tmp_path):
    stack = stack_for({"CREDIT_RUN_DIR": str(tmp_path), "WORKERS": "2", "STACK": "embedded"})
    stack.prometheus.prepare()   # writes the configuration into the run folder, as a start does
    proc = subprocess.run([PROMTOOL, "check", "config", str(stack.prometheus.config_file)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and str(RULES_FILE) in proc.stdout, proc.stdout

    # and refuses a broken one: the check is real
    (tmp_path / "broken.yml").write_text(render_config(scrape_config({"risk-api": "http://127.0.0.1:1/metrics"}))
                                         .replace('"scrape_timeout": "2s"', '"scrape_timeout": "5s"'))
    proc = subprocess.run([PROMTOOL, "check", "config", str(tmp_path / "broken.yml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "scrape timeout greater than scrape interval" in proc.stdout + proc.stderr
