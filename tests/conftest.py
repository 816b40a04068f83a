"""Session fixtures: the real servers (Tansu broker, private MariaDB, embedded HBase) on free ports."""

from __future__ import annotations

import pytest
from hypothesis import settings as hypothesis_settings

from deploy.services import Broker, HBaseServer, MariaDB, free_port

# The same examples on every run (no example database on a fresh checkout, no deadline on a shared 2-core
# machine): a red run is reproducible, and new examples are explored by changing the seed on purpose.
hypothesis_settings.register_profile("project", derandomize=True, deadline=None)
hypothesis_settings.load_profile("project")


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory):
    """One run folder for the session's servers (pid files, logs, data)."""
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def broker(services_dir):
    """A Tansu broker; use ``broker.url`` (kafka://...) or ``broker.bootstrap`` (host:port)."""
    svc = Broker(run_dir=services_dir, port=free_port())
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def mariadb(services_dir):
    """A private MariaDB with the project database and app user; ``mariadb.url`` is a MYSQL_URL."""
    svc = MariaDB(run_dir=services_dir, port=free_port())
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def hbase_server(services_dir):
    """The embedded HBase Thrift server on a SQLite file (binary protocol, buffered transport)."""
    svc = HBaseServer(run_dir=services_dir, port=free_port())
    svc.start()
    yield svc
    svc.stop()
