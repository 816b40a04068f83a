"""down stops what up started whatever the caller's environment, never a process that only has a recorded pid,
and reports (stderr, exit 1) what it could not stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local import up
from deploy.services import (HBaseServer, ProcessRecord, PythonProcess, ServiceError, free_port, pid_alive,
                             pid_start_time, port_open)
from tests.deploy.stack_testlib import stack_for

ROOT = Path(__file__).resolve().parents[2]
PORT_VARS = ("BROKER_PORT", "MYSQL_PORT", "HBASE_PORT", "APPLICANT_API_PORT", "RISK_API_PORT")


def local_bare(run_dir, *args):
    """`python -m deploy.local ...` from a shell whose environment holds CREDIT_RUN_DIR and nothing else."""
    return subprocess.run([sys.executable, "-m", "deploy.local", *args], env={"CREDIT_RUN_DIR": str(run_dir)},
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


@pytest.fixture()
def spawn_sleeper():
    """Start processes that are none of the stack's (a pid file may come to name one); killed at the end."""
    procs = []

    def spawn() -> subprocess.Popen:
        procs.append(subprocess.Popen(["sleep", "300"]))
        return procs[-1]

    yield spawn
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture()
def sleeper(spawn_sleeper):
    return spawn_sleeper()


def test_down_from_a_shell_without_the_ports_stops_the_broker_hbase_and_both_apis(tmp_path):
    run_dir = tmp_path / "run"
    env = {"CREDIT_RUN_DIR": str(run_dir), **{name: str(free_port()) for name in PORT_VARS}}
    stack = stack_for(env)
    started = [stack.broker, stack.mariadb, stack.hbase, stack.applicant_api, stack.risk_api]
    try:
        up(stack, started)
        pids = {svc.name: svc.pid() for svc in started}
        assert all(pids.values()), pids

        # status from the bare shell sees each where it was started, not at the default ports
        status = local_bare(run_dir, "status")
        assert status.returncode == 0, status.stderr
        for svc in started:
            line = next(line for line in status.stdout.splitlines() if line.startswith(svc.name + " "))
            assert "running" in line and f"127.0.0.1:{svc.port} " in line and f"pid {pids[svc.name]}" in line, line

        result = local_bare(run_dir, "down")
        assert result.returncode == 0, result.stderr
        for svc in started:
            assert not pid_alive(pids[svc.name]), f"{svc.name} (pid {pids[svc.name]}) survived down"
            assert not port_open(svc.host, svc.port), f"{svc.name} still listens on {svc.port}"
            assert f"{svc.name} (pid {pids[svc.name]}): stopped" in result.stderr, result.stderr
        assert not list(run_dir.glob("*.pid")) and not list(run_dir.glob("*.process.json"))
    finally:
        for svc in started:
            svc.stop()


def test_up_refuses_another_port_while_the_recorded_process_runs(tmp_path):
    first = HBaseServer(run_dir=tmp_path, port=free_port())
    first.start()
    try:
        other = HBaseServer(run_dir=tmp_path, port=free_port())
        with pytest.raises(ServiceError, match=f"already runs .* on 127.0.0.1:{first.port}, not on "
                                               f"127.0.0.1:{other.port}"):
            other.start()
        assert other.is_running() and other.pid() == first.pid()  # recognised whatever port it was built with
        assert first.start() is False  # up again with the same port changes nothing
    finally:
        first.stop()
    assert not first.record_file.exists() and not first.pid_file.exists()


def test_down_stops_a_worker_this_environment_does_not_count(tmp_path):
    extra = PythonProcess(name="worker-5", args=["-c", "import time; time.sleep(300)"], run_dir=tmp_path)
    extra.start()
    pid = extra.pid()
    try:
        status = local_bare(tmp_path, "status")
        assert any(line.startswith("worker-5 ") and "running" in line for line in status.stdout.splitlines()), \
            status.stdout
        result = local_bare(tmp_path, "down")
        assert result.returncode == 0, result.stderr
        assert f"worker-5 (pid {pid}): stopped" in result.stderr
        assert not pid_alive(pid)
    finally:
        extra.stop()


def test_a_recorded_pid_now_naming_another_process_is_left_alone_and_reported(tmp_path, spawn_sleeper):
    svc = HBaseServer(run_dir=tmp_path, port=free_port())
    svc.start()
    record = svc.record()
    svc.kill()  # the recorded process dies; its pid goes to another process (a sleeper stands in)
    sleeper = spawn_sleeper()
    reused = json.loads(svc.record_file.read_text())
    reused["pid"] = sleeper.pid
    svc.record_file.write_text(json.dumps(reused))
    svc.pid_file.write_text(f"{sleeper.pid}\n")
    assert record.start_time != pid_start_time(sleeper.pid)

    assert not svc.is_running()
    assert "stopped" in local_bare(tmp_path, "status").stdout.splitlines()[2]  # hbase's line
    result = local_bare(tmp_path, "down")
    assert result.returncode == 0, result.stderr
    assert pid_alive(sleeper.pid) and sleeper.poll() is None, "down killed a process it never started"
    assert f"hbase (pid {sleeper.pid}): had already exited: its pid now belongs to another process (sleep 300)" \
        in result.stderr, result.stderr
    assert not svc.record_file.exists() and not svc.pid_file.exists()


def test_a_live_pid_down_cannot_recognise_is_reported_with_exit_1(tmp_path, sleeper):
    # A pid file with no record (written before records existed) naming a process that is not the service.
    (tmp_path / "hbase.pid").write_text(f"{sleeper.pid}\n")
    result = local_bare(tmp_path, "down")
    assert result.returncode == 1
    assert f"could not stop: hbase (pid {sleeper.pid}): could not be stopped" in result.stderr, result.stderr
    assert "sleep 300" in result.stderr
    assert pid_alive(sleeper.pid) and sleeper.poll() is None
    assert (tmp_path / "hbase.pid").exists()  # kept: it is reported again until someone looks


def test_a_record_knows_its_own_process_and_nothing_else(sleeper):
    mine = ProcessRecord.of("me", os.getpid(), ["python"], "127.0.0.1", None)
    assert mine.state() == "running" and mine.is_alive()
    assert ProcessRecord.from_json(mine.to_json()) == mine

    other = ProcessRecord(**{**mine.__dict__, "pid": sleeper.pid})
    assert other.state() == "reused" and not other.is_alive()
    earlier_boot = ProcessRecord(**{**mine.__dict__, "boot_id": "another-boot"})
    assert earlier_boot.state() == "reused"
    sleeper.kill()
    sleeper.wait()
    assert ProcessRecord(**{**mine.__dict__, "pid": sleeper.pid}).state() == "gone"


@pytest.mark.parametrize("text, field", [
    ("[]", "object"), ("{", "JSON"),
    ('{"name": "x", "pid": "12", "start_time": 1, "boot_id": "b", "cmdline": [], "host": "h"}', "pid"),
    ('{"name": "x", "pid": 12, "start_time": 1, "boot_id": "b", "cmdline": [], "host": "h", "port": 0}', "port"),
    ('{"name": "x", "pid": 12, "start_time": true, "boot_id": "b", "cmdline": [], "host": "h"}', "start_time"),
])
def test_a_bad_record_is_refused_naming_the_field(text, field):
    with pytest.raises(ValueError, match=field):
        ProcessRecord.from_json(text)
