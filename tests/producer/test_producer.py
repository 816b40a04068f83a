"""The producer against the real applicant API (HTTP), MariaDB and Tansu broker: delivery, restart, outages."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import requests

from applicant_api.devserver import ServerThread
from deploy.services import Broker, free_port
from producer.checkpoint import Checkpoint, CheckpointError
from producer.producer import Producer, run_producer
from producer.settings import load_settings

from tests.producer.producer_testlib import API_TOKEN, consume, ids_of, insert_applicants
from tests.store import stored_ids

ROOT = Path(__file__).resolve().parents[2]


def test_once_publishes_every_applicant_keyed_with_provenance(db_url, api_server, settings_for, broker, topic):
    insert_applicants(db_url, range(1, 2501))
    settings = settings_for(api_server.url, batch=1000)
    summary = run_producer(settings, once=True)
    assert summary["published"] == 2500 and summary["last_seq"] == 2500 and summary["started_after"] == 0
    assert Checkpoint(settings.checkpoint).load() == 2500

    messages = consume(broker.bootstrap, topic, 2500)
    assert sorted(ids_of(messages)) == stored_ids(db_url)
    api_view = requests.get(f"{api_server.url}/api/v1/applicants/77",
                            headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10).json()
    msg = next(m for m in messages if m.key == b"77")
    value = orjson.loads(msg.value)
    assert set(value) == {"applicant", "provenance"}
    assert value["applicant"] == {k: v for k, v in api_view.items() if k not in ("seq", "source", "created_at")}
    prov = value["provenance"]
    assert (prov["seq"], prov["source"], prov["created_at"]) == (api_view["seq"], "producer-test",
                                                                  api_view["created_at"])
    assert prov["fetched_at"].endswith("Z")

    # The checkpoint holds: a second run publishes nothing, a third only what is new.
    assert run_producer(settings, once=True)["published"] == 0
    insert_applicants(db_url, range(2501, 2511))
    again = run_producer(settings, once=True)
    assert (again["published"], again["started_after"], again["last_seq"]) == (10, 2500, 2510)
    assert sorted(ids_of(consume(broker.bootstrap, topic, 2510))) == list(range(1, 2511))


def test_kill_9_mid_run_then_restart_skips_nothing(db_url, api_server, settings_for, broker, topic, tmp_path):
    total = 20_000
    insert_applicants(db_url, range(1, total + 1))
    checkpoint = tmp_path / "producer.checkpoint"
    env = {**os.environ, "APPLICANT_API_URL": api_server.url, "APPLICANT_API_TOKEN": API_TOKEN,
           "KAFKA_BROKER": broker.url, "TOPIC_RAW": topic, "PRODUCER_CHECKPOINT": str(checkpoint),
           "PRODUCER_BATCH": "100", "PRODUCER_INTERVAL": "0.2", "PRODUCER_METRICS_PORT": "0"}
    first = subprocess.Popen([sys.executable, "-m", "producer"], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Checkpoint(checkpoint).load() < 1000:
            assert first.poll() is None, first.stderr.read().decode()
            time.sleep(0.005)
        time.sleep(0.03)                               # land inside a page, not on its boundary
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        first.stderr.close()
    at_kill = Checkpoint(checkpoint).load()
    assert 1000 <= at_kill < total, f"not killed mid-run (checkpoint {at_kill})"

    second = subprocess.run([sys.executable, "-m", "producer", "--once"], env=env, cwd=ROOT,
                            capture_output=True, timeout=120)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    summary = orjson.loads(second.stdout.decode().strip().splitlines()[-1])
    assert summary["started_after"] == at_kill and summary["last_seq"] == total

    ids = ids_of(consume(broker.bootstrap, topic, total))
    assert set(ids) == set(stored_ids(db_url)), "an applicant in the database never reached the topic"
    duplicates = len(ids) - len(set(ids))
    print(f"kill -9 at seq {at_kill}: {len(ids)} messages for {total} applicants, {duplicates} duplicates")


def test_api_down_waits_with_backoff_then_resumes(db_url, api_app, settings_for, broker, topic, caplog):
    insert_applicants(db_url, range(1, 1201))
    port = free_port()
    settings = settings_for(f"http://127.0.0.1:{port}", batch=500)

    async def scenario():
        producer = Producer(settings)
        task = asyncio.create_task(producer.run())
        await asyncio.sleep(1.0)                       # the API is not there yet
        assert not task.done() and producer.published == 0
        server = ServerThread(api_app, port=port).start()
        try:
            await _until(lambda: producer.published == 1200, 30)
        finally:
            server.stop()                              # the API goes away mid-run
        insert_applicants(db_url, range(1201, 1301))
        await asyncio.sleep(1.0)
        assert not task.done() and producer.published == 1200
        server = ServerThread(api_app, port=port).start()
        try:
            await _until(lambda: producer.published == 1300, 30)
        finally:
            producer.stop()
            summary = await asyncio.wait_for(task, 30)
            server.stop()
        return summary

    with caplog.at_level(logging.INFO, logger="producer"):
        summary = asyncio.run(scenario())
    assert summary["published"] == 1300 and summary["last_seq"] == 1300
    waits = [r.getMessage() for r in caplog.records if "applicant API" in r.getMessage()
             and "unavailable" in r.getMessage()]
    assert len(waits) >= 3, "the producer should log each wait"
    assert any("is back" in r.getMessage() for r in caplog.records)
    assert sorted(ids_of(consume(broker.bootstrap, topic, 1300))) == list(range(1, 1301))


def test_broker_down_waits_with_backoff_then_publishes(db_url, api_server, settings_for, topic, tmp_path, caplog):
    insert_applicants(db_url, range(1, 301))
    late_broker = Broker(run_dir=tmp_path / "late-broker", port=free_port())
    settings = settings_for(api_server.url, broker=late_broker.url)

    async def scenario():
        producer = Producer(settings)
        task = asyncio.create_task(producer.run(once=True))
        await asyncio.sleep(1.5)
        assert not task.done() and producer.published == 0
        await asyncio.to_thread(late_broker.start)
        return await asyncio.wait_for(task, 60)

    try:
        with caplog.at_level(logging.INFO, logger="producer"):
            summary = asyncio.run(scenario())
        assert summary["published"] == 300
        assert sum("broker" in r.getMessage() and "unavailable" in r.getMessage() for r in caplog.records) >= 2
        assert sorted(ids_of(consume(late_broker.bootstrap, topic, 300))) == list(range(1, 301))
    finally:
        late_broker.stop()


def test_broker_lost_mid_run_republishes_from_the_checkpoint(db_url, api_server, settings_for, topic, tmp_path,
                                                              caplog):
    insert_applicants(db_url, range(1, 501))
    flaky = Broker(run_dir=tmp_path / "flaky-broker", port=free_port())
    flaky.start()
    settings = settings_for(api_server.url, broker=flaky.url, send_timeout_ms=1500, batch=200)

    async def scenario():
        producer = Producer(settings)
        task = asyncio.create_task(producer.run())
        await _until(lambda: producer.published == 500, 30)
        await asyncio.to_thread(flaky.stop)           # the broker dies (and, being Tansu in memory, forgets)
        insert_applicants(db_url, range(501, 801))
        await asyncio.sleep(3.0)
        assert not task.done() and producer.published == 500 and producer.acked == 500
        await asyncio.to_thread(flaky.start)
        try:
            await _until(lambda: producer.published == 800, 60)
        finally:
            producer.stop()
        return await asyncio.wait_for(task, 30)

    try:
        with caplog.at_level(logging.INFO, logger="producer"):
            summary = asyncio.run(scenario())
        assert summary["published"] == 800 and summary["last_seq"] == 800
        assert Checkpoint(settings.checkpoint).load() == 800
        assert any("broker" in r.getMessage() and ("unavailable" in r.getMessage() or "acknowledge" in r.getMessage())
                   for r in caplog.records if r.levelno == logging.WARNING)
        # Everything after the last checkpoint reached the restarted broker.
        assert set(ids_of(consume(flaky.bootstrap, topic, 300))) >= set(range(501, 801))
    finally:
        flaky.stop()


def test_wrong_token_is_a_permanent_error(db_url, api_server, settings_for):
    from producer.api_client import ApiRejected

    with pytest.raises(ApiRejected, match="APPLICANT_API_TOKEN"):
        run_producer(settings_for(api_server.url, api_token="not-the-token"), once=True)


def test_checkpoint_is_atomic_and_refuses_garbage(tmp_path):
    cp = Checkpoint(tmp_path / "sub" / "cp")
    assert cp.load() == 0
    cp.save(41)
    cp.save(42)
    assert cp.load() == 42
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cp"]     # no temp files left behind
    (tmp_path / "sub" / "cp").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        cp.load()
    with pytest.raises(ValueError):
        cp.save(-1)


def test_settings_come_from_the_environment_and_are_checked():
    s = load_settings(environ={"KAFKA_BROKER": "kafka://h1:1,h2:2", "PRODUCER_BATCH": "250",
                               "PRODUCER_INTERVAL": "0.5", "TOPIC_RAW": "t"})
    assert (s.bootstrap, s.batch, s.interval, s.topic) == ("h1:1,h2:2", 250, 0.5, "t")
    assert load_settings(environ={}).api_url == "http://127.0.0.1:5001"
    for env in ({"PRODUCER_BATCH": "0"}, {"PRODUCER_BATCH": "x"}, {"KAFKA_BROKER": "http://h:1"},
                {"APPLICANT_API_URL": "ftp://x"}, {"PRODUCER_INTERVAL": "-1"}):
        with pytest.raises(ValueError):
            load_settings(environ=env)
    with pytest.raises(TypeError):
        load_settings(environ={}, nonsense=1)


async def _until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
