"""The main job end to end: `deploy.local run` ends with a reconciled JSON summary and leaves nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from deploy.services import free_port, port_open

PORT_VARS = ("BROKER_PORT", "MYSQL_PORT", "HBASE_PORT", "APPLICANT_API_PORT", "RISK_API_PORT",
             "WORKER_1_WEB_PORT", "WORKER_2_WEB_PORT", "ZOOKEEPER_PORT", "PRODUCER_METRICS_PORT", "PROMETHEUS_PORT",
             "DASHBOARD_PORT")


def test_run_reconciles_and_stops_everything(stack, tmp_path):
    env = dict(os.environ, CREDIT_RUN_DIR=str(tmp_path / "run"), WORKERS="2", STACK=stack)
    env.update({name: str(free_port()) for name in PORT_VARS})
    proc = subprocess.run([sys.executable, "-m", "deploy.local", "run", "--applicants", "3000",
                           "--dirty", "0.05", "--seed", "11", "--timeout", "120"],
                          env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])

    assert summary["reconciled"] is True
    assert summary["applicants"] == 3000
    assert 0 < summary["invalid"] < 3000 * 0.1            # the dirty rows, refused with line numbers
    assert "rejected line" in proc.stderr
    decided = summary["approved"] + summary["declined_model"] + summary["declined_policy"]
    assert summary["hbase_rows"] == decided == summary["decisions"]
    assert summary["applicants"] == summary["invalid"] + summary["hbase_rows"] + summary["dlq"]
    assert summary["declined_policy"] > 0 and summary["declined_model"] > 0 and summary["approved"] > 0
    # Once the applications were up, it said where to watch them.
    assert f"dashboard: http://127.0.0.1:{env['DASHBOARD_PORT']} " in proc.stderr, proc.stderr[-3000:]
    assert f"prometheus: http://127.0.0.1:{env['PROMETHEUS_PORT']} " in proc.stderr, proc.stderr[-3000:]

    # Nothing is left running: no pid file, no port still listening.
    assert not list((tmp_path / "run").glob("*.pid"))
    for name in PORT_VARS[:5]:
        assert not port_open("127.0.0.1", int(env[name])), name


def test_keep_running_leaves_every_service_prometheus_and_the_dashboard_up(tmp_path):
    """Embedded stack, a few applicants: after the summary every process still runs, Prometheus still scrapes
    them all and the dashboard answers; `down` then stops everything."""
    import requests

    from deploy.services import pid_alive
    from tests.deploy.stack_testlib import stack_for

    run_dir = tmp_path / "run"
    env = dict(os.environ, CREDIT_RUN_DIR=str(run_dir), WORKERS="1", STACK="embedded")
    env.update({name: str(free_port()) for name in PORT_VARS})
    try:
        proc = subprocess.run([sys.executable, "-m", "deploy.local", "run", "--applicants", "400", "--dirty", "0.05",
                               "--seed", "2", "--timeout", "120", "--keep-running"],
                              env=env, capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout.strip().splitlines()[-1])["reconciled"] is True
        assert "--keep-running: the stack stays up" in proc.stderr

        stack = stack_for({key: env[key] for key in ("CREDIT_RUN_DIR", "WORKERS", "STACK", *PORT_VARS)})
        pids = {svc.name: svc.pid() for svc in stack.services}
        assert all(pids.values()), pids
        targets = requests.get(f"{stack.prometheus.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        assert {t["labels"]["instance"] for t in targets} == set(stack.prometheus.targets)
        assert requests.get(f"{stack.dashboard.url}/health", timeout=5).status_code == 200
    finally:
        subprocess.run([sys.executable, "-m", "deploy.local", "down"], env=env, capture_output=True, timeout=180)
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not list(run_dir.glob("*.pid"))


def test_a_broker_crash_mid_run_is_reported_as_lost_applicants_by_id(tmp_path):
    """Embedded stack (Tansu keeps messages in memory only): kill -9 of the broker mid-run, then `up`: the job
    stalls and names the lost applicants (count and sample), the same ones `reconcile` finds afterwards.
    On the apache stack the broker keeps its log: tests/topology/test_apache_faults.py shows nothing is lost."""
    import re
    import signal
    import time

    from hbase_helper.writer import count_rows
    from deploy.services import wait_for

    run_dir = tmp_path / "run"
    env = dict(os.environ, CREDIT_RUN_DIR=str(run_dir), WORKERS="1", STACK="embedded")
    env.update({name: str(free_port()) for name in PORT_VARS})
    job = subprocess.Popen([sys.executable, "-m", "deploy.local", "run", "--applicants", "8000", "--dirty", "0",
                            "--seed", "5", "--timeout", "20"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        def some_saved() -> bool:
            assert job.poll() is None, job.communicate()[1][-3000:]
            try:
                return count_rows(host="127.0.0.1", port=int(env["HBASE_PORT"])) > 0
            except Exception:  # the HBase server or its table is not there yet
                return False
        wait_for(some_saved, 180, interval=0.05, what="the first decisions in HBase")
        os.kill(int((run_dir / "broker.pid").read_text()), signal.SIGKILL)
        time.sleep(0.5)
        subprocess.run([sys.executable, "-m", "deploy.local", "up", "--infra-only"], env=env, check=True,
                       capture_output=True, timeout=120)
        out, err = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 1, err[-3000:]
    found = re.search(r"stalled at [\d,]+/([\d,]+) applicants .*?\s(\d[\d,]*) applicants are lost: .*?"
                      r"e\.g\. ([\d, .()a-z]+)\.", err, re.S)
    assert found, err[-3000:]
    lost_count = int(found.group(2).replace(",", ""))
    sample = [int(i) for i in re.findall(r"\d+", found.group(3).split("...")[0])]
    assert 0 < lost_count < int(found.group(1).replace(",", ""))
    assert "memory only" in err and "reconcile --republish" in err
    assert "the broker was restarted or died during the run" in err

    # The job stopped everything; with the servers back, reconcile names the same applicants.
    try:
        subprocess.run([sys.executable, "-m", "deploy.local", "up", "--infra-only"], env=env, check=True,
                       capture_output=True, timeout=120)
        proc = subprocess.run([sys.executable, "-m", "deploy", "reconcile", "--json"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr[-2000:]
        report = json.loads(proc.stdout)
        assert report["lost_count"] == lost_count and report["lost"][:len(sample)] == sample
    finally:
        subprocess.run([sys.executable, "-m", "deploy.local", "down"], env=env, capture_output=True, timeout=120)
    assert not list(run_dir.glob("*.pid"))


def test_a_stage_that_dies_inside_a_worker_fails_the_job_at_once_naming_worker_and_stage(tmp_path):
    """Embedded stack: the job's worker runs tests.topology.crash_app; once its submit stage is at work, that
    agent is cancelled inside the running process. The job fails with the worker and stage named, from the
    worker's /health, long before its stall timeout (here longer than the test's own timeout), and stops
    everything."""
    import threading

    import click
    import pytest

    from deploy.job import run_job
    from deploy.services import wait_for
    from tests.deploy.stack_testlib import has_processed, stack_for, with_crash_app

    run_dir = tmp_path / "run"
    trigger = tmp_path / "crash-trigger"
    stack = with_crash_app(stack_for({"CREDIT_RUN_DIR": str(run_dir), "WORKERS": "1", "STACK": "embedded",
                                      **{name: str(free_port()) for name in PORT_VARS}}), trigger)
    worker = stack.workers[0]
    crashed_at = threading.Event()

    def crash_once_at_work() -> None:
        try:
            wait_for(lambda: has_processed(worker, "submit"), 300, interval=0.05, what="submit at work")
        except TimeoutError:
            return
        trigger.write_text("submit")
        crashed_at.set()

    threading.Thread(target=crash_once_at_work, daemon=True).start()
    with pytest.raises(click.ClickException) as failure:
        run_job(stack, applicants=10_000, dirty=0, seed=4, keep_running=False, stall_timeout=3600)
    message = failure.value.message
    assert crashed_at.is_set(), message
    assert message.startswith("worker-1: stage 'submit' crashed: "), message[:2000]
    assert "stalled at" not in message and "--- worker-1 log tail ---" in message
    assert not list(run_dir.glob("*.pid"))
