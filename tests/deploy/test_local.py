"""The launcher: up starts every service, up again changes nothing, down leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from deploy.services import pid_alive, port_open, free_port
from tests.deploy.stack_testlib import stack_for

PORT_VARS = ("BROKER_PORT", "MYSQL_PORT", "HBASE_PORT", "APPLICANT_API_PORT", "RISK_API_PORT",
             "WORKER_1_WEB_PORT", "WORKER_2_WEB_PORT", "ZOOKEEPER_PORT", "PRODUCER_METRICS_PORT", "PROMETHEUS_PORT",
             "DASHBOARD_PORT")


@pytest.fixture()
def stack_env(stack, tmp_path):
    env = dict(os.environ, CREDIT_RUN_DIR=str(tmp_path / "run"), WORKERS="2", STACK=stack)
    env.update({name: str(free_port()) for name in PORT_VARS})
    return env


def local(env, *args, check=True):
    """`python -m deploy.local ARGS`; with ``check``, a failure says what the command printed."""
    out = subprocess.run([sys.executable, "-m", "deploy.local", *args], env=env, capture_output=True,
                         text=True, timeout=180)
    if check and out.returncode != 0:
        pytest.fail(f"deploy.local {' '.join(args)} exited {out.returncode}:\n{out.stdout[-3000:]}\n"
                    f"{out.stderr[-3000:]}")
    return out


def test_up_is_idempotent_and_down_leaves_nothing(stack_env):
    first = local(stack_env, "up")
    stack = stack_for(stack_env)
    pids = {svc.name: svc.pid() for svc in stack.services}
    assert all(pids.values()), first.stdout + first.stderr

    # Each service answers a real request.
    token = stack.applicant_api.extra_env["APPLICANT_API_TOKEN"]
    assert requests.get(f"{stack.applicant_api.url}/health", timeout=5).status_code == 200
    resp = requests.get(f"{stack.applicant_api.url}/api/v1/applicants?limit=1",
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert resp.status_code == 200, resp.text
    assert requests.get(f"{stack.risk_api.url}/health", timeout=5).status_code == 200
    for svc in stack.infrastructure:
        assert svc.answers(), svc.status()

    status = local(stack_env, "status").stdout
    for svc in stack.services:
        line = next(line for line in status.splitlines() if line.startswith(svc.name + " "))
        assert line.split()[1] == "running", status
    assert f"stack: {stack_env['STACK']}" in status, status
    # Prometheus and the dashboard answer where status says, and each worker's health is there
    assert f"prometheus: http://127.0.0.1:{stack_env['PROMETHEUS_PORT']} " in status, status
    assert f"dashboard: http://127.0.0.1:{stack_env['DASHBOARD_PORT']} " in status, status
    assert requests.get(f"{stack.prometheus.url}/-/ready", timeout=5).status_code == 200
    for worker in stack.workers:
        assert f"{worker.name} health: " in status, status

    second = local(stack_env, "up")
    assert "started" not in second.stderr.replace("already running", ""), second.stderr
    assert {svc.name: svc.pid() for svc in stack.services} == pids

    local(stack_env, "down")
    for name, pid in pids.items():
        assert not pid_alive(pid), f"{name} (pid {pid}) still alive after down"
    for svc in stack.services:
        if svc.port is not None:
            assert not port_open(svc.host, svc.port), f"{svc.name} port {svc.port} still listening"
    assert "stopped" in local(stack_env, "status").stdout
