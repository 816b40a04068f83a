"""The multi-host run: six hosts made from network namespaces, a worker host cut off for 30 s and another killed.

Needs root (network namespaces); the report is written to ``test-artifacts/multihost/report.json``
(``TEST_ARTIFACTS`` moves it)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from deploy import multihost
from deploy.netns import unavailable_reason
from deploy.services import ServiceError, pid_cmdline

pytestmark = [pytest.mark.apache_only,
              pytest.mark.skipif(unavailable_reason() is not None, reason=f"{unavailable_reason()}")]

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
APPLICANTS = 50_000
RECOVERY_BOUND = 60.0   # seconds: far above the 6 s session timeout that governs it, far below the run


def processes_mentioning(text: str) -> list[str]:
    return [f"{pid}: {pid_cmdline(int(pid))[:120]}" for pid in os.listdir("/proc")
            if pid.isdigit() and int(pid) != os.getpid() and text in pid_cmdline(int(pid))]


def namespaces_named(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith(prefix)]


def own_address(listener: str) -> str:
    """'[::ffff:10.231.7.2]:9092' (a JVM's dual-stack socket) and '10.231.7.2:9092' -> '10.231.7.2'."""
    address = listener.rsplit(":", 1)[0].strip("[]")
    return address.removeprefix("::ffff:")


@pytest.mark.timeout(1200)
def test_a_cut_link_and_a_killed_host_lose_nothing_and_every_partition_is_served_again(tmp_path):
    report = multihost.run_multihost(tmp_path / "run", applicants=APPLICANTS)
    ARTIFACTS.joinpath("multihost").mkdir(parents=True, exist_ok=True)
    ARTIFACTS.joinpath("multihost", "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("seconds", "recovery", "reconciliation", "hbase")}, indent=1))

    # Every process bound to its own host's address; the one wildcard is standalone HBase's ZooKeeper
    # (deploy.apache_servers.zookeeper_bind), still given to clients as the data host's address.
    hosts = report["hosts"]
    for name, listening in report["listeners"].items():
        strays = [addr for addr in listening if own_address(addr) != hosts[name]]
        assert strays == (["0.0.0.0:2181"] if name == "data" else []), (name, listening)
    assert report["loopback_settings"] == ["hbase-master: 0.0.0.0"]
    assert report["listeners"]["db"] == [f"{hosts['db']}:{port}" for port in (3306, 5001, 5002)]
    assert all(report["listeners"][w] == [f"{hosts[w]}:6066"] for w in ("worker-1", "worker-2", "worker-3"))

    # Exact reconciliation: every applicant of the store is one row in HBase or in the DLQ, none in both.
    rec = report["reconciliation"]
    assert (report["imported"], report["invalid"]) == (APPLICANTS, 0)
    assert rec == {"store": report["imported"], "hbase": rec["hbase"], "dlq": rec["dlq"], "missing": 0, "both": 0,
                   "reconciled": True}
    assert rec["hbase"] + rec["dlq"] == report["imported"]
    outcome = report["outcome"]
    assert outcome["decisions"] == rec["hbase"] and outcome["dlq"] == rec["dlq"] and outcome["both"] == 0
    # No duplicate rows: one main row and one time-index row per decided applicant, one decision in each row.
    assert report["hbase"] == {"rows": rec["hbase"], "index_rows": rec["hbase"], "rows_with_several_decisions": 0}

    # The groups rebalanced: the lost hosts' partitions moved and were consumed again, and the cut host came back.
    for kind in ("cut", "kill"):
        for group in report["recovery"][kind]:
            assert group["affected"], (kind, group)
            assert 0 < group["reassigned_after_s"] <= group["served_after_s"] < RECOVERY_BOUND, (kind, group)
    assert all(g["owner_again_after_restore_s"] is not None for g in report["recovery"]["cut"])
    assert report["cut_worker_alive"]
    assert report["killed_host_processes"] == []

    # Nothing left behind: namespaces, links, processes.
    assert report["leftovers"] == []
    assert processes_mentioning(str(tmp_path / "run")) == []


@pytest.mark.timeout(600)
def test_a_run_that_fails_midway_leaves_no_namespace_link_or_process_behind(tmp_path, monkeypatch):
    made = []
    real_network = multihost.Network

    def network(*args, **kwargs):
        made.append(real_network(*args, **kwargs))
        return made[-1]

    def fail(stack, *args, **kwargs):
        assert all(svc.is_running() for svc in stack.applications if svc is not stack.producer)
        raise ServiceError("injected: the workers never became ready")

    monkeypatch.setattr(multihost, "Network", network)
    monkeypatch.setattr(multihost, "wait_ready", fail)
    with pytest.raises(ServiceError, match="injected"):
        multihost.run_multihost(tmp_path / "run", applicants=1_000, chunks=10)
    (net,) = made
    assert net.leftovers() == []
    assert namespaces_named(net.prefix) == []
    assert processes_mentioning(str(tmp_path / "run")) == []
