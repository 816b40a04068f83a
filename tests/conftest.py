"""Session fixtures: the real servers on free ports, once per stack, and a private MariaDB.

Every fixture that hands out a broker or an HBase Thrift server depends on ``stack``, which is parametrised
with the stacks of ``TEST_STACKS`` (both by default): ``embedded`` (Tansu, the project's HBase emulator) and
``apache`` (Apache Kafka 3.9 KRaft, Apache HBase 2.6 standalone + its Thrift v1 server). A test that talks to
Kafka or HBase therefore runs once per stack and its id names the stack (``test_x[apache]``). The servers of
a stack start on first use and stay up for the whole session, so the JVMs start once per run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

from deploy.apache_servers import HBaseMaster, HBaseThrift, KafkaServer
from deploy.local import STACKS as ALL_STACKS
from deploy.services import Broker, HBaseServer, MariaDB, Service, free_port

# The same examples on every run (no example database on a fresh checkout, no deadline on a shared 2-core
# machine): a red run is reproducible, and new examples are explored by changing the seed on purpose.
hypothesis_settings.register_profile("project", derandomize=True, deadline=None)
hypothesis_settings.load_profile("project")

# TEST_STACKS narrows a local run to one stack (CI and `make test` run both).
STACKS = tuple(s.strip() for s in os.environ.get("TEST_STACKS", ",".join(ALL_STACKS)).split(",") if s.strip())
if not STACKS or set(STACKS) - set(ALL_STACKS):
    raise pytest.UsageError(f"TEST_STACKS must name some of {', '.join(ALL_STACKS)}, got {STACKS!r}")


class StackServers:
    """The broker and HBase Thrift server of each stack, started on first use and stopped at session end."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self._started: dict[tuple[str, str], Service] = {}

    def _get(self, stack: str, role: str, make) -> Service:
        key = (stack, role)
        if key not in self._started:
            svc = make(self.run_dir / stack)
            svc.start()
            self._started[key] = svc
        return self._started[key]

    def broker(self, stack: str) -> Broker:
        if stack == "apache":
            return self._get(stack, "broker", lambda d: KafkaServer(run_dir=d, port=free_port()))
        return self._get(stack, "broker", lambda d: Broker(run_dir=d, port=free_port()))

    def hbase_master(self) -> HBaseMaster:
        """The apache stack's HBase JVM (ZooKeeper, master, region server) behind its Thrift servers."""
        return self._get("apache", "hbase-master", lambda d: HBaseMaster(run_dir=d, port=free_port()))

    def hbase(self, stack: str) -> HBaseServer | HBaseThrift:
        if stack == "apache":
            master = self.hbase_master()
            return self._get(stack, "hbase", lambda d: HBaseThrift(master=master, port=free_port()))
        return self._get(stack, "hbase", lambda d: HBaseServer(run_dir=d, port=free_port()))

    def stop_all(self) -> None:
        for svc in reversed(list(self._started.values())):
            svc.stop()


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory):
    """One run folder for the session's servers (pid files, logs, data)."""
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def stack_servers(services_dir):
    servers = StackServers(services_dir)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="session", params=STACKS)
def stack(request) -> str:
    """The stack a Kafka/HBase test runs on: 'embedded' or 'apache'."""
    return request.param


@pytest.fixture(scope="session")
def broker(stack, stack_servers):
    """The stack's broker; use ``broker.url`` (kafka://...) or ``broker.bootstrap`` (host:port)."""
    return stack_servers.broker(stack)


@pytest.fixture(scope="session")
def hbase_server(stack, stack_servers):
    """The stack's HBase Thrift server (binary protocol, buffered transport): ``.host``, ``.port``."""
    return stack_servers.hbase(stack)


@pytest.fixture(scope="session")
def hbase_emulator(stack_servers):
    """The project's HBase emulator, for the tests of the emulator itself (not parametrised by stack)."""
    return stack_servers.hbase("embedded")


@pytest.fixture(scope="session")
def apache_hbase(stack_servers):
    """Apache HBase's Thrift server, for the conformance tests that hold the emulator to it."""
    return stack_servers.hbase("apache")


@pytest.fixture(scope="session")
def mariadb(services_dir):
    """A private MariaDB with the project database and app user; ``mariadb.url`` is a MYSQL_URL."""
    svc = MariaDB(run_dir=services_dir, port=free_port())
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def db_url(mariadb) -> str:
    """MYSQL_URL of the session MariaDB with an empty, freshly created `applications` table."""
    from applicant_api.schema import reset_db

    reset_db(mariadb.url)
    return mariadb.url


def pytest_configure(config):
    config.addinivalue_line("markers", "apache_only: needs the apache stack's servers (their data survives a "
                                       "kill -9); deselected when TEST_STACKS leaves the apache stack out")


def pytest_collection_modifyitems(config, items):
    if "apache" in STACKS:
        return
    dropped = [item for item in items if item.get_closest_marker("apache_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("apache_only")]
