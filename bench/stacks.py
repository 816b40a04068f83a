"""The two stacks a benchmark runs on (embedded: Tansu + HBase emulator; apache: Kafka + HBase JVMs), timed."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import click

from bench.common import figure
from deploy.apache_servers import HBaseMaster, HBaseThrift, KafkaServer
from deploy.services import Broker, HBaseServer, Service, free_port

STACKS = ("embedded", "apache")
DEFAULT_STACK = "both"      # BENCH_STACK (`python -m bench --stack` sets it for every bench it runs)
# What each server process is, per stack, in figure names.
LABELS = {
    "embedded": {"broker": "Tansu", "hbase": "HBase emulator"},
    "apache": {"broker": "Kafka JVM", "hbase_master": "HBase master JVM", "hbase": "HBase Thrift JVM"},
}

STACK_OPTION = click.option(
    "--stack", type=click.Choice([*STACKS, "both"]), default=lambda: os.environ.get("BENCH_STACK") or DEFAULT_STACK,
    show_default="BENCH_STACK, else both",
    help="embedded (Tansu + the HBase emulator), apache (Apache Kafka + Apache HBase) or both, one after the other.")


def stacks_for(choice: str) -> list[str]:
    return list(STACKS) if choice == "both" else [choice]


def tagged(name: str, stack: str) -> str:
    """A figure name that says which stack it was measured on."""
    return f"{name} [{stack}]"


def cpu_seconds(pid: int | None) -> float:
    """user + system CPU of a process (all its threads) and of its live children (gunicorn workers)."""
    if pid is None:
        return float("nan")
    total = 0.0
    pids = [pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


def rss_mb(pid: int | None) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return float("nan")


class Servers:
    """The broker and/or HBase Thrift server of one stack on free ports: how long each took to answer, its RSS.

    On the apache stack HBase is two JVMs started one after the other: the master (ZooKeeper, master and region
    server; ready when ZooKeeper answers) and the Thrift server (ready when happybase's tables() answers, i.e. once
    the master has initialised)."""

    def __init__(self, stack: str, run_dir: Path, *, broker: bool = True, hbase: bool = True):
        self.stack = stack
        self.run_dir = Path(run_dir) / stack
        self.broker: Broker | None = None
        self.hbase: HBaseServer | HBaseThrift | None = None
        self.roles: dict[str, Service] = {}
        if broker:
            self.broker = (KafkaServer if stack == "apache" else Broker)(run_dir=self.run_dir, port=free_port())
            self.roles["broker"] = self.broker
        if hbase and stack == "apache":
            master = HBaseMaster(run_dir=self.run_dir, port=free_port())
            self.hbase = HBaseThrift(master=master, port=free_port())
            self.roles.update(hbase_master=master, hbase=self.hbase)
        elif hbase:
            self.hbase = HBaseServer(run_dir=self.run_dir, port=free_port())
            self.roles["hbase"] = self.hbase
        self.start_seconds: dict[str, float] = {}
        self.ready_rss_mb: dict[str, float] = {}

    def __enter__(self) -> Servers:
        try:
            for role, svc in self.roles.items():
                started = time.monotonic()
                svc.start()
                self.start_seconds[role] = time.monotonic() - started
                self.ready_rss_mb[role] = rss_mb(svc.pid())
                print(f"  [{self.stack}] {self.label(role)} answered after {self.start_seconds[role]:.1f} s, "
                      f"RSS {self.ready_rss_mb[role]:.0f} MB", flush=True)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        for svc in reversed(list(self.roles.values())):
            svc.stop()

    def label(self, role: str) -> str:
        return LABELS[self.stack][role]

    def pids(self) -> dict[str, int | None]:
        return {role: svc.pid() for role, svc in self.roles.items()}

    def figures(self) -> list[dict]:
        """Start-up seconds of each server process, and its RSS now (after the benchmark) against at start-up."""
        out = [figure(tagged(f"start-up: {self.label(role)}, seconds until it answers", self.stack), [seconds], "s",
                      higher_is_better=False) for role, seconds in self.start_seconds.items()]
        out += [figure(tagged(f"memory: {self.label(role)} RSS after the benchmark", self.stack),
                       [rss_mb(svc.pid())], "MB", higher_is_better=False, reference="RSS at start-up",
                       reference_values=[self.ready_rss_mb[role]]) for role, svc in self.roles.items()]
        return out
