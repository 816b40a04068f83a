"""The app factory under gunicorn, as production runs it: refuses to boot without a token unless auth is off."""

from __future__ import annotations

import os
import subprocess
import time

import requests

from applicant_api.serve import gunicorn_argv
from deploy.services import free_port


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLICANT_API_")}
    env.update(MYSQL_URL=db_url, **extra)
    return env


def _serve(env: dict[str, str], tmp_path):
    port = free_port()
    log = open(tmp_path / f"gunicorn-{port}.log", "w+b")
    proc = subprocess.Popen(gunicorn_argv(f"127.0.0.1:{port}", workers=1, threads=2), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def _wait_healthy(proc, base: str, log) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"gunicorn exited: {_read(log)}"
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not become healthy: {_read(log)}")


def _read(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(15)


def test_gunicorn_refuses_to_boot_without_token(db_url, tmp_path):
    proc, _, log = _serve(_env(db_url), tmp_path)
    try:
        code = proc.wait(30)
    finally:
        _stop(proc)
    assert code != 0
    assert "APPLICANT_API_TOKEN is not set" in _read(log)


def test_gunicorn_serves_with_token_and_without_only_when_auth_is_off(db_url, tmp_path, applicant_factory):
    token = "gunicorn-test-token"
    proc, base, log = _serve(_env(db_url, APPLICANT_API_TOKEN=token), tmp_path)
    try:
        _wait_healthy(proc, base, log)
        headers = {"Authorization": f"Bearer {token}"}
        posted = requests.post(base + "/api/v1/applicants", json=[applicant_factory(i) for i in range(1, 4)],
                               headers=headers, timeout=10)
        assert posted.status_code == 201, posted.text
        assert requests.get(base + "/api/v1/applicants", timeout=10).status_code == 401
        page = requests.get(base + "/api/v1/applicants", params={"limit": 2}, headers=headers, timeout=10).json()
        assert [a["id"] for a in page["applicants"]] == [1, 2]
    finally:
        _stop(proc)
    proc, base, log = _serve(_env(db_url, APPLICANT_API_AUTH="off"), tmp_path)
    try:
        _wait_healthy(proc, base, log)
        assert requests.get(base + "/api/v1/applicants", timeout=10).json()["count"] == 3
    finally:
        _stop(proc)


def test_serve_command_refuses_without_token_before_starting_gunicorn(monkeypatch):
    from click.testing import CliRunner

    from applicant_api.__main__ import cli

    monkeypatch.delenv("APPLICANT_API_TOKEN", raising=False)
    monkeypatch.delenv("APPLICANT_API_AUTH", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--bind", f"127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "APPLICANT_API_TOKEN is not set" in result.output
