"""The main job end to end: `deploy.local run` ends with a reconciled JSON summary and leaves nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from deploy.services import free_port, port_open

PORT_VARS = ("BROKER_PORT", "MYSQL_PORT", "HBASE_PORT", "APPLICANT_API_PORT", "RISK_API_PORT",
             "WORKER_1_WEB_PORT", "WORKER_2_WEB_PORT")


def test_run_reconciles_and_stops_everything(tmp_path):
    env = dict(os.environ, CREDIT_RUN_DIR=str(tmp_path / "run"), WORKERS="2")
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
