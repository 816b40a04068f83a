"""The main job end to end: `deploy.local run` ends with a reconciled JSON summary and leaves nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from deploy.services import free_port, port_open

PORT_VARS = ("BROKER_PORT", "MYSQL_PORT", "HBASE_PORT", "APPLICANT_API_PORT", "RISK_API_PORT",
             "WORKER_1_WEB_PORT", "WORKER_2_WEB_PORT", "ZOOKEEPER_PORT")


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

    # Nothing is left running: no pid file, no port still listening.
    assert not list((tmp_path / "run").glob("*.pid"))
    for name in PORT_VARS[:5]:
        assert not port_open("127.0.0.1", int(env[name])), name


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
