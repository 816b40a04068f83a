"""Faust workers of the topology as child processes (start, SIGTERM, kill -9, log tail): for tests and benchmarks."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

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


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
