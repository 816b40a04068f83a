"""Fixtures for hbase_helper tests: settings isolated by a unique table prefix, writers, decision factories.

Fixtures of the store/audit tests are prefixed ``store_`` / ``audit_``; the
embedded server's tests may add ``thrift_`` fixtures here.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.factories import clean_applicant


def make_decision(app_id: int, *, decision: str = "approve", raw_ts: int = 1_700_000_000_000,
                  decided_at: int | None = None, **changes) -> dict:
    """A decision dict in the writer's contract (what the topology's save agent hands over)."""
    by_model = decision == "approve" or changes.get("decided_by") == "model"
    out = {
        "id": app_id,
        "applicant": clean_applicant(app_id, emp_title="Engineer \u00e9\u4e2d"),   # non-ASCII text stored as is
        "decision": decision,
        "decided_by": "model" if by_model else "policy",
        "probability_of_default": 0.0731 if by_model else None,
        "risk_band": "B" if by_model else None,
        "reasons": ([{"code": "LOW_PD", "text": "probability of default below threshold", "weight": 0.4}]
                    if by_model else [{"code": "POLICY_GRADE", "text": "grade E, F or G"}]),
        "model_version": "lr-2024.05" if by_model else None,
        "policy_version": "policy-v1",
        "threshold": 0.2 if by_model else None,
        "provenance": {"topic": "applicants.raw", "partition": app_id % 4, "offset": app_id * 3,
                       "timestamp_ms": raw_ts, "source": "applicant_api", "seq": app_id + 7,
                       "fetched_at": "2024-06-01T12:00:00.000001Z"},
        "ingested_at": raw_ts + 5,
        "decided_at": decided_at if decided_at is not None else raw_ts + 40,
    }
    out.update(changes)
    return out


@pytest.fixture
def store_make_decision():
    return make_decision


@pytest.fixture
def store_settings(hbase_server):
    """Settings for the session's HBase server, with a table prefix of this test's own."""
    from hbase_helper.settings import HBaseSettings

    return HBaseSettings(host=hbase_server.host, port=hbase_server.port,
                         table_prefix="t" + uuid.uuid4().hex[:10], pool_size=2, timeout_ms=60_000)


@pytest.fixture
def store_conn(store_settings):
    """A plain happybase connection to this test's tables (created)."""
    from hbase_helper.layout import ensure_tables
    from hbase_helper.pool import connect

    with connect(store_settings) as conn:
        ensure_tables(conn)
        yield conn


@pytest.fixture
def store_writer(store_settings):
    """A DecisionWriter with a pool of its own."""
    from hbase_helper.pool import make_pool
    from hbase_helper.writer import DecisionWriter

    return DecisionWriter(store_settings, pool=make_pool(store_settings))


@pytest.fixture
def audit_env(store_settings):
    """Environment for running the audit CLI as a subprocess against this test's tables."""
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("HBASE_")]:
        del env[key]
    env.update(HBASE_HOST=store_settings.host, HBASE_PORT=str(store_settings.port),
               HBASE_TABLE_PREFIX=store_settings.table_prefix)
    return env


@pytest.fixture
def audit_offline_env():
    """Environment pointing the audit CLI at a port nobody listens on (input checks come first)."""
    from deploy.services import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("HBASE_")}
    env.update(HBASE_HOST="127.0.0.1", HBASE_PORT=str(free_port()), HBASE_TIMEOUT_MS="2000")
    return env
