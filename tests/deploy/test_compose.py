"""deploy/container/compose.yaml, checked offline: the compose specification's JSON schema (check-jsonschema's
vendored copy), `docker-compose config` (Debian's docker-compose: no engine needed), and what the file promises:
health checks and healthy dependencies, a scalable worker, secrets only from the git-ignored env file, every
server on 0.0.0.0 addressed by service name, Prometheus scraping every process with the project's alert rules,
and only settings the code reads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.test_cluster_files import COMPONENTS, class_reads, parse_example

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = ROOT / "deploy" / "container"
COMPOSE = CONTAINER / "compose.yaml"
EXAMPLE = CONTAINER / "compose.env.example"
APP_SERVICES = {"init", "applicant-api", "risk-api", "producer", "worker", "dashboard", "reconcile", "dlq"}
INFRA = {"kafka", "hbase-master", "hbase-thrift", "mariadb", "prometheus"}
TOOLS = {"reconcile", "dlq"}          # run on demand (profile "tools")
ONE_SHOT = {"init"} | TOOLS
SECRETS = {"APPLICANT_API_TOKEN", "RISK_API_TOKEN", "RISK_ADMIN_TOKEN", "DASHBOARD_TOKEN", "MYSQL_PASSWORD",
           "MYSQL_ROOT_PASSWORD"}
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|MYSQL_URL")


def tool(name: str, hint: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: {hint}")
    return found


def compose_config(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    docker_compose = tool("docker-compose", "deploy/scripts/bootstrap.sh installs Debian's docker-compose")
    return subprocess.run([docker_compose, "--env-file", str(env_file), "-f", str(COMPOSE), "config", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """The file as docker-compose resolves it (anchors merged, the example's values interpolated)."""
    env = tmp_path_factory.mktemp("compose") / "compose.env"
    env.write_text(EXAMPLE.read_text())
    result = compose_config(env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_file_validates_against_the_compose_specification_schema():
    check = tool("check-jsonschema", "pip install -e '.[test]' (PyPI check-jsonschema)")
    result = subprocess.run([check, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config_accepts_it_with_the_example_env_file(rendered):
    assert set(rendered["services"]) == APP_SERVICES | INFRA


def test_a_missing_secret_stops_docker_compose_naming_it(tmp_path):
    for secret in sorted(SECRETS):
        env = tmp_path / "compose.env"
        env.write_text("".join(line + "\n" for line in EXAMPLE.read_text().splitlines()
                               if not line.startswith(f"{secret}=")))
        result = compose_config(env, "--quiet")
        assert result.returncode != 0 and secret in result.stderr, (secret, result.stderr)


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies(raw, rendered):
    for name, svc in rendered["services"].items():
        if name not in ONE_SHOT:
            test = svc.get("healthcheck", {}).get("test")
            assert test and not svc["healthcheck"].get("disable"), name
        for dep, how in (svc.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dep == "init" else "service_healthy"
            assert how["condition"] == expected, (name, dep, how)
    deps = {name: set(svc.get("depends_on") or {}) for name, svc in rendered["services"].items()}
    assert {"kafka", "hbase-thrift", "risk-api", "init"} <= deps["worker"]
    assert {"kafka", "applicant-api", "init"} <= deps["producer"]
    assert {"kafka", "hbase-thrift", "mariadb"} <= deps["init"]
    assert "hbase-master" in deps["hbase-thrift"] and "mariadb" in deps["applicant-api"]


def test_the_worker_scales(rendered):
    """`--scale worker=N`: nothing fixed per container, and partitions enough for several workers."""
    for name, svc in rendered["services"].items():
        assert "container_name" not in svc, name
    worker = rendered["services"]["worker"]
    assert "ports" not in worker and "hostname" not in worker
    assert int(worker["environment"]["TOPIC_PARTITIONS"]) >= 4
    assert worker["command"] == ["worker"]


def test_images_are_pinned(rendered):
    for name, svc in rendered["services"].items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), (name, image)
    images = {name: svc["image"] for name, svc in rendered["services"].items()}
    assert images["kafka"].startswith("apache/kafka:3.9.")
    assert images["hbase-master"] == images["hbase-thrift"]
    assert rendered["services"]["hbase-master"]["build"]["dockerfile"] == "deploy/container/hbase/Dockerfile"
    assert {images[s] for s in APP_SERVICES} == {"credit-risk-pipeline:0.1.0"}


def test_secrets_come_only_from_the_env_file_which_git_and_docker_ignore(raw):
    text = "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))
    for name, svc in raw["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_NAME.search(key) or key.startswith("MARIADB_") and "PASSWORD" in key:
                assert re.search(r"\$\{[A-Z_]+:\?", str(value)), (name, key, value)
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required == SECRETS
    example = {m.group(1) for m in re.finditer(r"^([A-Z_]+)=", EXAMPLE.read_text(), re.M)}
    assert SECRETS <= example
    assert "deploy/container/compose.env" in (ROOT / ".gitignore").read_text().split()
    assert "deploy/container/compose.env" in (ROOT / ".dockerignore").read_text().split()
    check = subprocess.run(["git", "check-ignore", "-q", "deploy/container/compose.env"], cwd=ROOT)
    assert check.returncode == 0


def test_each_service_gets_only_the_secrets_it_needs(rendered):
    def secrets_of(name):
        env = rendered["services"][name].get("environment") or {}
        return {k for k in env if k in SECRETS or k in ("MYSQL_URL", "MARIADB_PASSWORD", "MARIADB_ROOT_PASSWORD")}

    assert secrets_of("worker") == {"RISK_API_TOKEN"}
    assert secrets_of("producer") == {"APPLICANT_API_TOKEN"}
    assert secrets_of("risk-api") == {"RISK_API_TOKEN", "RISK_ADMIN_TOKEN"}
    assert secrets_of("applicant-api") == {"APPLICANT_API_TOKEN", "MYSQL_URL"}
    assert secrets_of("dashboard") == {"DASHBOARD_TOKEN"}
    assert secrets_of("mariadb") == {"MARIADB_PASSWORD", "MARIADB_ROOT_PASSWORD"}
    assert secrets_of("prometheus") == set() and secrets_of("kafka") == set()


def test_servers_bind_every_interface_and_peers_are_addressed_by_service_name(rendered):
    services = rendered["services"]
    env = {name: svc.get("environment") or {} for name, svc in services.items()}
    assert env["risk-api"]["RISK_API_HOST"] == "0.0.0.0"
    assert env["applicant-api"]["APPLICANT_API_BIND"].startswith("0.0.0.0:")
    assert env["dashboard"]["DASHBOARD_HOST"] == "0.0.0.0"
    assert env["producer"]["PRODUCER_METRICS_HOST"] == "0.0.0.0"
    assert env["kafka"]["KAFKA_LISTENERS"].startswith("PLAINTEXT://0.0.0.0:")
    # every address a process is given names a service of this file; nothing points at loopback
    for name, variables in env.items():
        for key, value in variables.items():
            value = str(value)
            assert "127.0.0.1" not in value and "localhost" not in value, (name, key, value)
            for url in re.findall(r"\b(?:https?|kafka|mysql|PLAINTEXT)://[^\s,]+", value):
                assert urlsplit(url).hostname in services or urlsplit(url).hostname == "0.0.0.0", (name, key, url)
            if key.endswith("_HOST") and value != "0.0.0.0":
                assert value in services, (name, key, value)
    for svc in services.values():   # published ports stay on the Docker host's loopback
        for port in svc.get("ports") or []:   # "host_ip:published:target" (docker-compose 1.x) or a mapping
            host_ip = port.split(":")[0] if isinstance(port, str) else port.get("host_ip")
            assert host_ip == "127.0.0.1", port


def test_prometheus_scrapes_every_process_with_the_project_s_alert_rules(rendered, tmp_path):
    prom = rendered["services"]["prometheus"]
    mounts = {}
    for volume in prom["volumes"]:   # docker-compose 1.x renders "source:target[:mode]", newer ones a mapping
        source, target = (volume.split(":")[:2] if isinstance(volume, str) else (volume["source"], volume["target"]))
        if source.startswith("/"):
            mounts[target] = Path(source)
    assert mounts["/etc/prometheus/alerts.yml"] == ROOT / "deploy" / "prometheus" / "alerts.yml"
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # the jobs the alert rules and the local stack name (deploy/prometheus.py's job_of)
    assert {"applicant-api", "risk-api", "producer", "worker"} <= set(jobs)
    env = {name: svc.get("environment") or {} for name, svc in rendered["services"].items()}
    ports = {"applicant-api": env["applicant-api"]["APPLICANT_API_BIND"].rsplit(":", 1)[1],
             "risk-api": str(env["risk-api"]["RISK_API_PORT"]),
             "producer": str(env["producer"]["PRODUCER_METRICS_PORT"])}
    for job, port in ports.items():
        assert jobs[job]["static_configs"][0]["targets"] == [f"{job}:{port}"]
    # every replica of the scaled worker, through Docker's DNS
    (sd,) = jobs["worker"]["dns_sd_configs"]
    assert sd["names"] == ["worker"] and str(sd["port"]) == str(env["worker"]["FAUST_WEB_PORT"])
    # promtool accepts the configuration with the rules where the container mounts them
    promtool = tool("promtool", "deploy/scripts/bootstrap.sh installs Debian's prometheus")
    local = tmp_path / "prometheus.yml"
    local.write_text(mounts["/etc/prometheus/prometheus.yml"].read_text().replace(
        "/etc/prometheus/alerts.yml", str(mounts["/etc/prometheus/alerts.yml"])))
    result = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- settings the code reads ----------------------------------------------------------------------------------

def entrypoint_reads() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (CONTAINER / "entrypoint.sh").read_text()))


def reads_of(*components: str, classes: tuple[str, ...] = ()) -> set[str]:
    """The variables a component's code reads (its settings classes) and its env example documents."""
    from dataclasses import replace

    names = set(entrypoint_reads())
    for name in components:
        component = COMPONENTS[name]
        names |= class_reads(component) | set(parse_example(component.example))
    if classes:
        names |= class_reads(replace(COMPONENTS["worker"], settings_classes=classes))
    return names


def test_every_setting_compose_gives_our_services_is_one_the_code_reads(rendered):
    everything = reads_of(*COMPONENTS, classes=("dashboard.settings:DashboardSettings",))
    allowed = {
        "worker": reads_of("worker"),
        "producer": reads_of("producer"),
        "risk-api": reads_of("risk-api"),
        "applicant-api": reads_of("applicant-api"),
        "dashboard": reads_of(classes=("dashboard.settings:DashboardSettings",)),
        "init": reads_of("worker", "applicant-api"),
        "reconcile": everything,
        "dlq": everything,
    }
    for name, names in allowed.items():
        unknown = set(rendered["services"][name].get("environment") or {}) - names
        assert not unknown, f"{name}: {sorted(unknown)} are read by none of its settings"
    # and the worker gets what it needs to reach its peers
    assert {"KAFKA_BROKER", "RISK_API_URL", "RISK_API_TOKEN", "HBASE_HOST", "HBASE_PORT", "TOPIC_PARTITIONS"} <= \
        set(rendered["services"]["worker"]["environment"])
