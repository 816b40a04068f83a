"""Fixtures for the topology tests: a real risk API (gunicorn), isolated topic/table names, a raw producer and reconciliation."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from dataclasses import dataclass, field

import happybase
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from credit_core.broker import bootstrap_servers
from deploy.apache_servers import HBaseThrift, KafkaServer
from deploy.services import FaustWorker, HBaseServer, free_port, wait_for
from deploy.services import risk_api as risk_api_service
from hbase_helper import layout
from hbase_helper.writer import read_decision
from topology.settings import Settings
from topology.topics import ensure_topics
from tests.topology.messages import messages

PARTITIONS = 4


@pytest.fixture(scope="session")
def risk_token():
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def risk_api(services_dir, risk_token):
    """The real risk API under gunicorn with the package's default model (session-wide, never stopped by tests)."""
    svc = risk_api_service(run_dir=services_dir, port=free_port(), token=risk_token, workers=1,
                           env={"RISK_MAX_BATCH": "10000"})
    svc.start(timeout=60)
    yield svc
    svc.stop()


@pytest.fixture
def own_risk_api(tmp_path, risk_token):
    """A risk API this test may stop and start."""
    svc = risk_api_service(run_dir=tmp_path / "risk", port=free_port(), token=risk_token, workers=1)
    svc.start(timeout=60)
    yield svc
    svc.stop()


@pytest.fixture
def start_risk_api(tmp_path, risk_token):
    """Factory: a risk API with extra RISK_* settings, stopped after the test."""
    started = []

    def start(**extra_env):
        svc = risk_api_service(run_dir=tmp_path / f"risk{len(started)}", port=free_port(), token=risk_token,
                               workers=1, env=extra_env)
        started.append(svc)
        svc.start(timeout=60)
        return svc
    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
def own_hbase(stack, stack_servers, tmp_path):
    """An HBase Thrift server this test may stop and start (same port, same data): on the embedded stack an
    emulator on its own SQLite file; on the apache stack a Thrift server of its own in front of the session's
    HBase JVM (what clients lose when "HBase" is down; tests/topology/test_apache_faults.py kills the JVM)."""
    if stack == "apache":
        svc = HBaseThrift(master=stack_servers.hbase_master(), port=free_port(), name="hbase-thrift-own")
    else:
        svc = HBaseServer(run_dir=tmp_path / "hbase", port=free_port())
    svc.start()
    yield svc
    svc.stop()


@dataclass
class Topology:
    """One isolated pipeline: its own topics, consumer group and HBase table prefix."""

    env: dict
    settings: Settings
    hbase: HBaseServer | HBaseThrift
    run_dir: object
    workers: list = field(default_factory=list)

    def worker(self, *, web_port: int | None = None, app: str | None = None, **env) -> FaustWorker:
        """Start one more worker (its web server on ``web_port``; ``app``: another app module; ``env``: extra)."""
        w = FaustWorker(name=f"worker{len(self.workers)}", run_dir=self.run_dir, env={**self.env, **env},
                        web_port=web_port, **({"app": app} if app else {}))
        self.workers.append(w)
        w.start()
        return w

    def logs(self) -> str:
        return "\n".join(f"--- worker {i}\n{w.tail_log(60)}" for i, w in enumerate(self.workers))

    # -- broker ---------------------------------------------------------
    def produce(self, msgs, *, timestamp_ms: int | None = None) -> None:
        """Publish (key, value) messages on the raw topic; ``timestamp_ms`` sets every record's timestamp
        (``-1`` is Kafka's "no timestamp"), else the producer stamps them."""
        async def run():
            await ensure_topics(self.settings)
            p = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, max_request_size=8 << 20)
            await p.start()
            try:
                futs = [await p.send(self.settings.topic_raw, v, key=k, timestamp_ms=timestamp_ms) for k, v in msgs]
                await asyncio.gather(*futs)
            finally:
                await p.stop()
        asyncio.run(run())

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.settings.broker)

    def read_topic(self, topic: str) -> list:
        """Every message of a topic from the beginning (key, value bytes)."""
        async def run():
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                 auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)
            await c.start()
            out = []
            try:
                tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
                c.assign(tps)
                await c.seek_to_beginning(*tps)
                idle = 0
                while idle < 2:
                    batch = await c.getmany(timeout_ms=300, max_records=50000)
                    if not batch:
                        idle += 1
                    for msgs in batch.values():
                        out.extend((m.key, m.value) for m in msgs)
            finally:
                await c.stop()
            return out
        return asyncio.run(run())

    def dlq(self) -> list[dict]:
        return [orjson.loads(v) for _, v in self.read_topic(self.settings.topic_dlq)]

    # -- HBase ----------------------------------------------------------
    def _connection(self) -> happybase.Connection:
        return happybase.Connection(self.hbase.host, self.hbase.port, table_prefix=self.env["HBASE_TABLE_PREFIX"],
                                    timeout=30000)

    def hbase_ids(self, table: str = layout.MAIN_TABLE) -> list[int]:
        """Ids of the rows in HBase (one entry per row, so duplicates would show)."""
        conn = self._connection()
        try:
            if table.encode() not in conn.tables():
                return []
            keys = [k for k, _ in conn.table(table).scan(filter="FirstKeyOnlyFilter() AND KeyOnlyFilter()",
                                                          batch_size=5000)]
        finally:
            conn.close()
        if table == layout.MAIN_TABLE:
            return [layout.id_from_row_key(k) for k in keys]
        return [layout.parse_index_key(k)[2] for k in keys]

    def read_decision(self, app_id: int):
        """The application's current decision with its ``history`` (hbase_helper.layout), or None."""
        conn = self._connection()
        try:
            if layout.MAIN_TABLE.encode() not in conn.tables():
                return None
            return read_decision(conn, app_id)
        finally:
            conn.close()

    def index_keys(self) -> dict[int, list[bytes]]:
        """Time-index row keys by application id."""
        conn = self._connection()
        try:
            if layout.INDEX_TABLE.encode() not in conn.tables():
                return {}
            keys = [k for k, _ in conn.table(layout.INDEX_TABLE).scan(
                filter="FirstKeyOnlyFilter() AND KeyOnlyFilter()", batch_size=5000)]
        finally:
            conn.close()
        out: dict[int, list[bytes]] = {}
        for key in keys:
            out.setdefault(layout.parse_index_key(key)[2], []).append(key)
        return out

    # -- reconciliation -------------------------------------------------
    def wait_accounted(self, expected: set[int], timeout: float = 120.0) -> None:
        def done():
            for w in self.workers:
                if w.exit_code() not in (None, 0, -9):
                    raise AssertionError(f"worker died ({w.exit_code()}):\n{self.logs()}")
            return len(set(self.hbase_ids()) | {d["id"] for d in self.dlq()}) >= len(expected)
        try:
            wait_for(done, timeout, interval=1.0, what="every applicant accounted for")
        except TimeoutError:
            raise AssertionError(f"not every applicant accounted for in {timeout}s:\n{self.logs()}") from None

    def reconcile(self, expected: set[int]) -> dict:
        rows = self.hbase_ids()
        index = self.hbase_ids(layout.INDEX_TABLE)
        dlq = self.dlq()
        dlq_ids = [d["id"] for d in dlq]
        saved, dead = set(rows), set(dlq_ids)
        assert len(rows) == len(saved), "duplicate rows in the main table"
        assert set(index) == saved, "the time index does not cover exactly the main table's applications"
        for app_id in {i for i in index if index.count(i) > 1}:   # several versions, or duplicates
            versions = {h["index_key"] for h in self.read_decision(app_id)["history"]}
            assert index.count(app_id) == len(versions), f"duplicate time-index rows for application {app_id}"
        assert not saved & dead, f"in both HBase and the DLQ: {sorted(saved & dead)[:10]}"
        assert saved | dead == expected, (f"missing: {sorted(expected - saved - dead)[:10]}, "
                                          f"unexpected: {sorted((saved | dead) - expected)[:10]}")
        events = {int(k) for k, _ in self.read_topic(self.settings.topic_decisions)}
        assert events == saved, "the decisions topic does not match the HBase rows"
        return {"rows": len(saved), "dlq": dlq, "dlq_ids": dead}


@pytest.fixture
def topology(broker, hbase_server, risk_api, tmp_path):
    """A fresh, isolated topology environment on the session broker, HBase server and risk API."""
    yield from _topology(broker, hbase_server, risk_api, tmp_path)


def _topology(broker, hbase, risk, tmp_path, **extra):
    tag = uuid.uuid4().hex[:8]
    env = dict(os.environ)
    env.update({
        "KAFKA_BROKER": broker.url, "TOPOLOGY_APP_ID": f"topology-test-{tag}", "TOPIC_PARTITIONS": str(PARTITIONS),
        "TOPIC_RAW": f"raw-{tag}", "TOPIC_CLEAN": f"clean-{tag}", "TOPIC_ELIGIBLE": f"eligible-{tag}",
        "TOPIC_SCORED": f"scored-{tag}", "TOPIC_DECISIONS": f"decisions-{tag}", "TOPIC_DLQ": f"dlq-{tag}",
        "TOPIC_PASSTHROUGH": f"pass-{tag}",
        "HBASE_HOST": hbase.host, "HBASE_PORT": str(hbase.port), "HBASE_TABLE_PREFIX": f"t{tag}",
        "RISK_API_URL": risk.url, "RISK_API_TOKEN": risk.extra_env["RISK_API_TOKEN"],
        "FAUST_DATADIR": str(tmp_path / "faust"),
        "RETRY_CAP": "2", "MAX_RAW_BYTES": "200000",
        # Tansu's end offsets are wrong: the embedded stack says so, as deploy.local does.
        "KAFKA_END_OFFSETS_RELIABLE": "true" if isinstance(broker, KafkaServer) else "false",
    })
    env.update(extra)
    topo = Topology(env=env, settings=Settings.from_env(env), hbase=hbase, run_dir=tmp_path)
    try:
        yield topo
    finally:
        for w in topo.workers:
            w.kill()


@pytest.fixture
def topology_on(tmp_path):
    """Factory: ``topology_on(broker, hbase, risk, **env)``, a topology on the given services."""
    gens = []

    def make(broker, hbase, risk, **extra):
        gen = _topology(broker, hbase, risk, tmp_path, **extra)
        gens.append(gen)
        return next(gen)
    yield make
    for gen in gens:
        gen.close()


@pytest.fixture
def make_topology(broker, topology_on):
    """Factory for a topology on the stack's broker and given HBase / risk API services (outage tests)."""
    return lambda hbase, risk, **extra: topology_on(broker, hbase, risk, **extra)


def _workload(count: int, first_id: int = 1, dirty_every: int = 50):
    """(messages, all ids, dirty ids) with the dirty kinds of tests.topology.messages (huge = 250 kB)."""
    msgs, dirty = [], set()
    for key, value, kind in messages(first_id, count, dirty_every=dirty_every, huge_bytes=250_000):
        msgs.append((key, value))
        if kind:
            dirty.add(int(key))
    return msgs, set(range(first_id, first_id + count)), dirty


@pytest.fixture
def workload():
    return _workload
