"""Apache stack only (its servers keep their data): kill -9 of the Kafka broker or of both HBase JVMs (master
and Thrift) in the middle of a run, then a restart: nothing lost, no duplicate row, exact reconciliation.
kill -9 of the Thrift server alone is test_e2e.py::test_hbase_down_for_10s[apache]."""

from __future__ import annotations

import time

import pytest

from deploy.services import wait_for

pytestmark = pytest.mark.apache_only

APPLICANTS = 30_000   # at 10,000 the run (faster once commits and rebalances worked) could end before the fault


def _run_through(topology_on, stack_servers, risk_api, workload, fault) -> None:
    """Publish APPLICANTS, start two workers, apply ``fault`` once rows are being written, then reconcile."""
    topology = topology_on(stack_servers.broker("apache"), stack_servers.hbase("apache"), risk_api)
    msgs, ids, dirty = workload(APPLICANTS)
    topology.produce(msgs)
    topology.worker()
    topology.worker()
    wait_for(lambda: len(topology.hbase_ids()) >= 1000, 120, interval=0.3, what="first rows")
    fault()
    saved_after_fault = len(topology.hbase_ids())
    assert saved_after_fault < len(ids) - len(dirty), "the run finished before the fault: make it longer"
    topology.wait_accounted(ids, timeout=300)
    result = topology.reconcile(ids)
    assert result["dlq_ids"] == dirty
    for w in topology.workers:
        assert w.exit_code() is None, f"a worker died:\n{topology.logs()}"


def _kill_and_restart(*services, down_for: float = 3.0):
    def fault():
        for svc in services:
            svc.kill()
        time.sleep(down_for)
        for svc in _start_order(services):
            svc.start()
    return fault


def _start_order(services):
    """The HBase master before its Thrift server, whatever order they were killed in."""
    return sorted(services, key=lambda svc: svc.name != "hbase-master")


def test_kill_9_of_the_kafka_broker_mid_run(topology_on, stack_servers, risk_api, workload):
    _run_through(topology_on, stack_servers, risk_api, workload,
                 _kill_and_restart(stack_servers.broker("apache")))


def test_kill_9_of_the_hbase_jvms_mid_run(topology_on, stack_servers, risk_api, workload):
    thrift = stack_servers.hbase("apache")
    _run_through(topology_on, stack_servers, risk_api, workload,
                 _kill_and_restart(thrift, stack_servers.hbase_master()))
