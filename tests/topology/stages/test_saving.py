"""The saving stage's HBase writes (real embedded HBase server) and the decision events it publishes."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import happybase

from hbase_helper import layout
from hbase_helper.settings import HBaseSettings
from hbase_helper.writer import DecisionWriter
from credit_core.jsoncodec import loads
from credit_core.messages.decision import decision
from topology.policy import Policy
from topology.stages.saving import save_decisions
from tests.factories import clean_applicant


def decisions(n):
    out = []
    for i in range(1, n + 1):
        rec = clean_applicant(i)
        item = {"id": i, "applicant": rec, "ingested_at": 10,
                "provenance": {"topic": "applicants.raw", "partition": i % 4, "offset": i, "timestamp_ms": 5,
                               "source": "t", "seq": i}}
        out.append((i % 4, decision(item, verdict="approve", decided_by="model", reasons=[],
                                    policy_version=Policy().version, probability_of_default=0.1, risk_band="B",
                                    model_version="m1", threshold=0.3, decided_at=20)))
    return out


def test_writes_rows_then_returns_events_and_dead_letters_contract_breakers(hbase_server):
    prefix = "s" + uuid.uuid4().hex[:8]
    writer = DecisionWriter(HBaseSettings(host=hbase_server.host, port=hbase_server.port, table_prefix=prefix))
    batch = decisions(20)
    batch[3][1]["provenance"] = {"partition": 0}      # no topic: breaks the writer's contract
    with ThreadPoolExecutor(1) as ex:
        events, dead = asyncio.run(save_decisions(writer, ex, batch, chunk=8, partitions=4, max_original=100000,
                                                  base=0.05, cap=0.1))
    assert sorted(int(k) for _, k, _ in events) == [i for i in range(1, 21) if i != 4]
    ev = loads(events[0][2])
    assert "applicant" not in ev and ev["saved_at"] >= ev["decided_at"] and ev["decision"] == "approve"
    assert len(dead) == 1
    rec = loads(dead[0][2])
    assert rec["stage"] == "save" and rec["id"] == 4 and "provenance.topic" in rec["errors"][0]["reason"]
    conn = happybase.Connection(hbase_server.host, hbase_server.port, table_prefix=prefix)
    try:
        ids = sorted(layout.id_from_row_key(k) for k, _ in conn.table(layout.MAIN_TABLE).scan())
        assert ids == [i for i in range(1, 21) if i != 4]
        row = layout.decode_main_row(layout.row_key(7), conn.table(layout.MAIN_TABLE).row(layout.row_key(7)))
        assert row["probability_of_default"] == 0.1 and row["provenance"]["offset"] == 7
    finally:
        conn.close()


def _writer(hbase_server, prefix):
    return DecisionWriter(HBaseSettings(host=hbase_server.host, port=hbase_server.port, table_prefix=prefix))


def _read(hbase_server, prefix, app_id):
    conn = happybase.Connection(hbase_server.host, hbase_server.port, table_prefix=prefix)
    try:
        key = layout.row_key(app_id)
        return layout.decode_main_row(key, conn.table(layout.MAIN_TABLE).row(key))
    finally:
        conn.close()


def test_a_decision_whose_raw_record_had_no_timestamp_is_saved_at_its_ingest_time(hbase_server):
    prefix = "s" + uuid.uuid4().hex[:8]
    batch = decisions(4)
    batch[0][1]["provenance"]["timestamp_ms"] = -1                  # Kafka's "no timestamp"
    batch[1][1]["provenance"]["timestamp_ms"] = None
    batch[2][1]["provenance"]["timestamp_ms"] = -2**40
    with ThreadPoolExecutor(1) as ex:
        events, dead = asyncio.run(save_decisions(_writer(hbase_server, prefix), ex, batch, chunk=8, partitions=4,
                                                  max_original=100000, base=0.05, cap=0.1))
    assert dead == [] and sorted(int(k) for _, k, _ in events) == [1, 2, 3, 4]
    for app_id in (1, 2, 3):
        row = _read(hbase_server, prefix, app_id)
        assert (row["time_ms"], row["time_source"]) == (10, "ingested")
        assert row["provenance"]["timestamp_source"] == "ingested"
    assert _read(hbase_server, prefix, 4)["time_source"] == "kafka"


def test_versions_of_one_application_in_one_batch_are_all_kept_and_the_latest_is_current(hbase_server):
    prefix = "s" + uuid.uuid4().hex[:8]
    batch = []
    for seq, offset in ((30, 5), (10, 9), (20, 7), (30, 5)):         # the last one replays the first
        partition, dec = decisions(1)[0]
        dec["provenance"].update(seq=seq, offset=offset)
        dec["applicant"]["annual_inc"] = 1000.0 * seq
        batch.append((partition, dec))
    with ThreadPoolExecutor(1) as ex:
        events, dead = asyncio.run(save_decisions(_writer(hbase_server, prefix), ex, batch, chunk=2, partitions=4,
                                                  max_original=100000, base=0.05, cap=0.1))
    assert dead == [] and len(events) == 4
    row = _read(hbase_server, prefix, 1)
    assert row["provenance"]["seq"] == 30 and row["applicant"]["annual_inc"] == 30_000.0
    assert [h["provenance"]["seq"] for h in row["history"]] == [10, 20, 30]


def test_failed_writes_are_retried_and_counted_and_each_write_reports_what_it_saved(hbase_server):
    from prometheus_client import CollectorRegistry

    from deploy.services import free_port
    from hbase_helper.metrics import HBaseWriterMetrics

    live = HBaseSettings(host=hbase_server.host, port=hbase_server.port, table_prefix="s" + uuid.uuid4().hex[:8])
    registry = CollectorRegistry()
    writer = DecisionWriter(live.with_(port=free_port(), timeout_ms=2000), metrics=HBaseWriterMetrics(registry))
    retries, saved = [], []

    def on_retry(exc):
        retries.append(exc)
        if len(retries) == 2:
            writer.settings = live          # HBase is back: the next attempt reaches it

    with ThreadPoolExecutor(1) as ex:
        events, dead = asyncio.run(save_decisions(
            writer, ex, decisions(10), chunk=4, partitions=4, max_original=100000, base=0.01, cap=0.02,
            on_retry=on_retry, on_saved=lambda at, decs: saved.append((at, [d["id"] for d in decs]))))
    assert dead == [] and len(events) == 10 and len(retries) == 2
    assert registry.get_sample_value("credit_hbase_write_retries_total") == 2
    assert [ids for _, ids in saved] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert {loads(v)["saved_at"] for _, _, v in events} == {at for at, _ in saved}
