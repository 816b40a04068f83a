"""`python -m deploy reconcile` on real servers: applicants lost by a kill -9 of the broker are named exactly,
`--republish` brings every one of them into HBase, and an id in both HBase and the DLQ is reported."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from applicant_api.importer import import_file
from applicant_api.schema import TABLE, reset_db
from credit_core.synthetic import generate
from deploy.ids import hbase_ids, read_dead_letters
from deploy.services import Broker, FaustWorker, GunicornApp, free_port, risk_api, wait_for
from hbase_helper import writer
from hbase_helper.settings import HBaseSettings
from topology.settings import Settings
from topology.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory):
    """A Tansu broker of this module's own, on both stacks: the kill test needs a broker that loses what it
    held (Apache Kafka keeps it: tests/topology/test_apache_faults.py). HBase is the stack's."""
    svc = Broker(run_dir=tmp_path_factory.mktemp("broker"), port=free_port())
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    svc = risk_api(run_dir=tmp_path_factory.mktemp("risk"), port=free_port(), token=secrets.token_urlsafe(16))
    svc.start(timeout=60)
    yield svc
    svc.stop()


@pytest.fixture
def store_url(mariadb):
    """A database of this test's own on the session MariaDB (made with the root password), dropped afterwards."""
    name = f"recon_{uuid.uuid4().hex[:8]}"
    conn = mariadb.connect_root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            for host in ("127.0.0.1", "localhost"):
                cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (mariadb.user, host))
    finally:
        conn.close()
    url = f"mysql://{mariadb.user}:{mariadb.password()}@{mariadb.host}:{mariadb.port}/{name}"
    reset_db(url)
    yield url
    conn = mariadb.connect_root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
    finally:
        conn.close()


@dataclass
class Pipeline:
    """Store -> applicant API -> producer -> broker -> one worker -> HBase / DLQ, on isolated names."""

    env: dict
    run_dir: Path
    broker: Broker
    hbase_settings: HBaseSettings
    api: GunicornApp
    workers: list = field(default_factory=list)

    def import_applicants(self, rows: int, id_start: int) -> list[int]:
        path = self.run_dir / f"applicants-{id_start}.csv"
        generate(path, rows=rows, seed=id_start % 1000, dirty=0.0, id_start=id_start)
        before = set(self.store_ids())
        report = import_file(path, url=self.env["MYSQL_URL"], batch_size=500, source="synthetic")
        assert report.imported == rows, report.summary()
        return sorted(set(self.store_ids()) - before)

    def store_ids(self) -> list[int]:
        from applicant_api.db import connect

        conn = connect(self.env["MYSQL_URL"])
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM `{TABLE}` ORDER BY id")
                return [r[0] for r in cur.fetchall()]
        finally:
            conn.close()

    def produce_once(self) -> dict:
        """The real producer (python -m producer --once): API pages to the raw topic, checkpoint after the acks."""
        proc = subprocess.run([sys.executable, "-m", "producer", "--once"], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def start_worker(self) -> FaustWorker:
        w = FaustWorker(name=f"worker{len(self.workers)}", run_dir=self.run_dir, env=self.env)
        self.workers.append(w)
        w.start()
        return w

    def ensure_topics(self) -> None:
        asyncio.run(ensure_topics(Settings.from_env(self.env)))

    def hbase(self) -> set[int]:
        return set(hbase_ids(self.hbase_settings))

    def dlq(self):
        return read_dead_letters(self.broker.bootstrap, self.env["TOPIC_DLQ"], idle_polls=2)

    def wait_accounted(self, ids, timeout=120.0) -> None:
        wanted = set(ids)
        try:
            wait_for(lambda: wanted <= self.hbase() | self.dlq().ids, timeout, interval=1.0,
                     what="every applicant in HBase or the DLQ")
        except TimeoutError:
            raise AssertionError(f"not accounted for in {timeout}s:\n{self.logs()}") from None

    def reconcile(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deploy", "reconcile", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=180)

    def publish_raw(self, messages) -> None:
        async def run():
            p = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all")
            await p.start()
            try:
                for key, value in messages:
                    await p.send_and_wait(self.env["TOPIC_RAW"], value, key=key)
            finally:
                await p.stop()
        asyncio.run(run())

    def logs(self) -> str:
        return "\n".join(f"--- worker {i}\n{w.tail_log(40)}" for i, w in enumerate(self.workers))


@pytest.fixture
def pipeline(own_broker, hbase_server, scoring, store_url, tmp_path):
    tag = uuid.uuid4().hex[:8]
    token = secrets.token_urlsafe(16)
    env = dict(os.environ)
    env.update({
        "CREDIT_RUN_DIR": str(tmp_path / "run"),  # the local stack's defaults stay out of the way
        "MYSQL_URL": store_url, "KAFKA_BROKER": own_broker.url, "TOPOLOGY_APP_ID": f"reconcile-test-{tag}",
        "TOPIC_PARTITIONS": str(PARTITIONS), "TOPIC_RAW": f"raw-{tag}",
        "TOPIC_CLEAN": f"clean-{tag}", "TOPIC_ELIGIBLE": f"eligible-{tag}", "TOPIC_SCORED": f"scored-{tag}",
        "TOPIC_DECISIONS": f"decisions-{tag}", "TOPIC_DLQ": f"dlq-{tag}", "TOPIC_PASSTHROUGH": f"pass-{tag}",
        "HBASE_HOST": hbase_server.host, "HBASE_PORT": str(hbase_server.port), "HBASE_TABLE_PREFIX": f"r{tag}",
        "RISK_API_URL": scoring.url, "RISK_API_TOKEN": scoring.extra_env["RISK_API_TOKEN"],
        "FAUST_DATADIR": str(tmp_path / "faust"), "RETRY_CAP": "2",
        "APPLICANT_API_TOKEN": token, "PRODUCER_CHECKPOINT": str(tmp_path / "producer.checkpoint"),
        "PRODUCER_BATCH": "100",
    })
    api_port = free_port()
    env["APPLICANT_API_URL"] = f"http://127.0.0.1:{api_port}"
    api = GunicornApp(name="applicant-api", factory="applicant_api.app:create_app()", run_dir=tmp_path / "api",
                      port=api_port, workers=1, env={"MYSQL_URL": store_url, "APPLICANT_API_TOKEN": token})
    api.start(timeout=60)
    pipe = Pipeline(env=env, run_dir=tmp_path, broker=own_broker, hbase_settings=HBaseSettings.from_env(env),
                    api=api)
    pipe.ensure_topics()
    # The decision tables under this test's prefix, so that a scan finds them even before the first decision.
    from hbase_helper.layout import ensure_tables
    from hbase_helper.pool import connect
    with connect(pipe.hbase_settings) as conn:
        ensure_tables(conn)
    try:
        yield pipe
    finally:
        for w in pipe.workers:
            w.kill()
        api.stop()


def test_applicants_lost_by_a_broker_crash_are_named_and_republished(pipeline):
    # 1. 120 applicants go all the way through.
    first = pipeline.import_applicants(120, id_start=1_000_000)
    pipeline.start_worker()
    assert pipeline.produce_once()["published"] == 120
    pipeline.wait_accounted(first)
    clean = pipeline.reconcile("--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["reconciled"] is True

    # 2. 80 more are published (the producer's checkpoint moves past them) while no worker runs,
    #    then the broker dies with them in memory and comes back empty.
    pipeline.workers[0].kill()
    lost = pipeline.import_applicants(80, id_start=5_000_000)
    assert pipeline.produce_once()["published"] == 80
    pipeline.broker.kill()
    pipeline.broker.stop()
    pipeline.broker.start()
    pipeline.ensure_topics()
    pipeline.start_worker()

    # 3. reconcile names exactly the lost ones, by id, and exits 1.
    proc = pipeline.reconcile("--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["missing"] == lost and report["missing_count"] == 80
    assert report["lost"] == lost, "the producer's checkpoint is past them: lost, not pending"
    assert report["unpublished"] == [] and report["both"] == []
    assert report["store"] == 200 and report["hbase"] == 120 and report["reconciled"] is False
    text = pipeline.reconcile("--sample", "5")
    assert text.returncode == 1
    assert "MISSING: 80 applicants in neither HBase nor the DLQ: 80 published by the producer" in text.stdout
    assert "ids: " + ", ".join(map(str, lost[:5])) + ", ... (75 more)" in text.stdout

    # 4. --republish sends them again; they all arrive, each on its own row, marked as a replay.
    again = pipeline.reconcile("--republish", "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["republished"] == 80, again.stderr[-2000:]
    pipeline.wait_accounted(lost)
    done = pipeline.reconcile("--json")
    assert done.returncode == 0, done.stdout + done.stderr
    final = json.loads(done.stdout)
    assert final["reconciled"] and final["missing"] == [] and final["both"] == [] and final["hbase"] == 200
    assert writer.count_rows(**_hbase_kwargs(pipeline)) == 200
    replayed = writer.read_decision(None, lost[0], **_hbase_kwargs(pipeline))
    assert replayed["provenance"]["source"] == "reconcile"
    original = writer.read_decision(None, first[0], **_hbase_kwargs(pipeline))
    assert original["provenance"]["source"] == "synthetic"

    # Republishing again is harmless: the same rows, nothing missing.
    twice = pipeline.reconcile("--republish", "--json")
    assert twice.returncode == 0 and json.loads(twice.stdout)["republished"] == 0


def test_an_id_in_both_hbase_and_the_dlq_is_reported(pipeline):
    ids = pipeline.import_applicants(20, id_start=7_000_000)
    pipeline.start_worker()
    pipeline.produce_once()
    pipeline.wait_accounted(ids)
    dup = ids[3]
    # Garbage under a stored applicant's id, under a foreign id and under no key: three dead letters.
    pipeline.publish_raw([(str(dup).encode(), b"garbage"), (b"424242424242", b"garbage"), (None, b"garbage")])
    wait_for(lambda: pipeline.dlq().records >= 3, 60, interval=1.0, what="three dead letters")

    proc = pipeline.reconcile("--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["both"] == [dup] and report["both_count"] == 1
    assert report["missing"] == [] and report["reconciled"] is False
    assert report["dlq_not_in_store"] == [424242424242] and report["dlq_without_id"] == 1
    assert report["dlq"] == 3 and report["hbase"] == 20
    text = pipeline.reconcile()
    assert text.returncode == 1
    assert f"IN BOTH HBase and the DLQ: 1 applicants\n  ids: {dup}\n" in text.stdout
    assert "not in the store, found in DLQ: 1 ids: 424242424242" in text.stdout


def _hbase_kwargs(pipeline) -> dict:
    s = pipeline.hbase_settings
    return {"host": s.host, "port": s.port, "table_prefix": s.table_prefix}


def test_a_server_that_cannot_be_read_is_exit_status_2_without_the_password(tmp_path):
    env = dict(os.environ, CREDIT_RUN_DIR=str(tmp_path / "run"),
               MYSQL_URL=f"mysql://credit:s3cret-pw@127.0.0.1:{free_port()}/credit")
    proc = subprocess.run([sys.executable, "-m", "deploy", "reconcile"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Can't connect to MySQL server" in proc.stderr and "Traceback" not in proc.stderr
    assert "s3cret-pw" not in proc.stderr and "credit:***@" in proc.stderr
