"""Run topology workers (and the risk API they call) as local processes: for the local stack, tests and benchmarks."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping

from deploy.services import Service
from topology.settings import worker_environ

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def _env_with_root(env: Mapping[str, str]) -> dict[str, str]:
    env = worker_environ(env)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class WorkerProcess:
    """One `faust -A topology.app worker` process with the given environment; start / stop / kill -9."""

    def __init__(self, env: Mapping[str, str], *, log_file: str | os.PathLike, cwd: str | os.PathLike,
                 loglevel: str = "info"):
        self.env = _env_with_root(env)
        self.log_file = Path(log_file)
        self.cwd = Path(cwd)
        self.loglevel = loglevel
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "WorkerProcess":
        if self.alive():
            raise RuntimeError("worker already running")
        self.cwd.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "faust", "-A", "topology.app", "worker",
                                      "-l", self.loglevel, "--without-web"],
                                     env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("worker %s ignored SIGTERM for %.0fs; killing", self.proc.pid, timeout)
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class RiskApiService(Service):
    """The risk API under gunicorn (`python -m risk_api serve`) with the package's default model."""

    name = "risk_api"

    def __init__(self, *, run_dir, port, token: str, workers: int = 1, host: str = "127.0.0.1",
                 extra_env: Mapping[str, str] | None = None):
        super().__init__(run_dir=run_dir, port=port, host=host)
        if not token:
            raise ValueError("the risk API needs a token")
        self.token = token
        self.workers = workers
        self.extra_env = dict(extra_env or {})

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def signature(self) -> str:
        return f"--port {self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "risk_api", "serve", "--host", self.host, "--port", str(self.port),
                "--workers", str(self.workers)]

    def env(self) -> dict[str, str]:
        env = _env_with_root(os.environ)
        env.update(self.extra_env)
        env["RISK_API_TOKEN"] = self.token
        return env

    def probe(self) -> None:
        with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
            if resp.status != 200:
                raise RuntimeError(f"health answered {resp.status}")


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
