"""The producer's metrics over HTTP after publishing to a real broker: published applicants, pages, checkpoint and
API errors equal what happened (in this process, and from `python -m producer` with PRODUCER_METRICS_PORT)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.services import free_port, port_open, wait_for
from producer.api_client import ApiRejected
from producer.checkpoint import Checkpoint
from producer.metrics import start_server
from producer.producer import Producer, run_producer
from tests.credit_core.prometheus_testlib import scrape, value
from tests.producer.producer_testlib import API_TOKEN, consume, ids_of, insert_applicants

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = "credit_producer_applicants_published_total"
PAGES = "credit_producer_pages_fetched_total"
ERRORS = "credit_producer_api_errors_total"
CHECKPOINT = "credit_producer_checkpoint_position"


@pytest.fixture
def metrics_server(settings_for, api_server):
    """This process's producer metrics served over HTTP on a free port; its /metrics address."""
    port = free_port()
    server = start_server(settings_for(api_server.url, metrics_port=port))
    assert server is not None
    yield f"http://127.0.0.1:{port}/metrics"
    httpd, thread = server
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def test_metrics_equal_what_was_published(db_url, api_server, settings_for, broker, topic, metrics_server):
    insert_applicants(db_url, range(1, 251))
    settings = settings_for(api_server.url, batch=100)
    before, _ = scrape(metrics_server)
    summary = run_producer(settings, once=True)
    after, _ = scrape(metrics_server)
    published = len(ids_of(consume(broker.bootstrap, topic, 250)))
    assert summary["published"] == published == 250
    assert value(after, PUBLISHED) - value(before, PUBLISHED) == 250
    # Pages of 100, 100 and 50: the short one ends a --once pass.
    assert value(after, PAGES) - value(before, PAGES) == 3
    assert value(after, CHECKPOINT) == Checkpoint(settings.checkpoint).load() == summary["last_seq"] == 250
    assert all(value(after, ERRORS, kind=k) == value(before, ERRORS, kind=k)
               for k in ("connection", "server_error", "throttled", "bad_page", "rejected"))
    assert value(after, "process_cpu_seconds_total") > 0

    # Nothing new: one empty page fetched, nothing published, the checkpoint stays.
    assert run_producer(settings, once=True)["published"] == 0
    again, _ = scrape(metrics_server)
    assert value(again, PUBLISHED) == value(after, PUBLISHED) and value(again, PAGES) == value(after, PAGES) + 1
    assert value(again, CHECKPOINT) == 250


def test_api_errors_are_counted_by_kind(settings_for, metrics_server):
    before, _ = scrape(metrics_server)
    dead_api = f"http://127.0.0.1:{free_port()}"                  # nothing listens there
    producer = Producer(settings_for(dead_api, backoff_start=0.05, backoff_max=0.05))

    async def run() -> None:
        task = asyncio.create_task(producer.run())
        while True:
            samples, _ = await asyncio.to_thread(scrape, metrics_server)
            if value(samples, ERRORS, kind="connection") - value(before, ERRORS, kind="connection") >= 3:
                break
            await asyncio.sleep(0.05)
        producer.stop()
        await asyncio.wait_for(task, 30)

    asyncio.run(asyncio.wait_for(run(), 60))
    after, _ = scrape(metrics_server)
    assert value(after, ERRORS, kind="connection") - value(before, ERRORS, kind="connection") >= 3
    assert value(after, PAGES) == value(before, PAGES)


def test_a_wrong_token_counts_as_rejected(db_url, api_server, settings_for, metrics_server):
    before, _ = scrape(metrics_server)
    with pytest.raises(ApiRejected, match="APPLICANT_API_TOKEN"):
        run_producer(settings_for(api_server.url, api_token="not-the-token"), once=True)
    after, _ = scrape(metrics_server)
    assert value(after, ERRORS, kind="rejected") - value(before, ERRORS, kind="rejected") == 1


def test_a_taken_port_or_port_0_leaves_the_producer_without_a_metrics_server(settings_for, api_server):
    assert start_server(settings_for(api_server.url, metrics_port=0)) is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert start_server(settings_for(api_server.url, metrics_port=taken.getsockname()[1])) is None


@pytest.mark.timeout(120)
def test_the_producer_command_serves_its_metrics(db_url, api_server, broker, topic, tmp_path):
    insert_applicants(db_url, range(1, 1201))
    port = free_port()
    env = {**os.environ, "APPLICANT_API_URL": api_server.url, "APPLICANT_API_TOKEN": API_TOKEN,
           "KAFKA_BROKER": broker.url, "TOPIC_RAW": topic, "PRODUCER_CHECKPOINT": str(tmp_path / "cp"),
           "PRODUCER_BATCH": "500", "PRODUCER_INTERVAL": "0.2", "PRODUCER_METRICS_PORT": str(port),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-for-the-producer")}
    log = tmp_path / "producer.log"
    proc = subprocess.Popen([sys.executable, "-m", "producer"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        def published_all() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            return port_open("127.0.0.1", port) and value(scrape(url)[0], PUBLISHED) == 1200

        wait_for(published_all, 60, what="1,200 applicants published")
        samples, text = scrape(url)
        assert len(ids_of(consume(broker.bootstrap, topic, 1200))) == 1200
        assert value(samples, CHECKPOINT) == Checkpoint(tmp_path / "cp").load() == 1200
        assert value(samples, PAGES) >= 3                               # 500, 500, 200, then polls
        assert API_TOKEN not in text
        assert not (tmp_path / "not-for-the-producer").exists()         # one process: its metrics stay in it
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
