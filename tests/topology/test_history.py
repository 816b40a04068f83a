"""Through a running worker: resubmissions keep a full history and the latest one is current; records without a timestamp are saved."""

from __future__ import annotations


import happybase

from hbase_helper import layout
from hbase_helper.audit import scan_decisions
from deploy.services import wait_for
from credit_core.clock import now_ms
from tests.factories import raw_applicant
from tests.topology.messages import envelope

VERSIONS = 4
# Two submit and two save actors per partition, one applicant per internal message: the most reordering.
CONCURRENT = {"STAGE_BATCH": "1", "SUBMIT_CONCURRENCY": "2", "SAVE_CONCURRENCY": "2", "SAVE_BATCH_WITHIN": "0.01"}


def _seq(app_id: int, version: int) -> int:
    return app_id * 10 + version


def _version(app_id: int, version: int) -> tuple[bytes, bytes]:
    """Version ``version`` of an application: changed data, an increasing seq; odd ids keep one key."""
    applicant = raw_applicant(app_id)
    applicant["annual_inc"] = str(40_000 + 1_000 * version)
    applicant["loan_amnt"] = applicant["funded_amnt"] = applicant["funded_amnt_inv"] = str(5_000 + 100 * version)
    key = str(app_id) if app_id % 2 else f"{app_id}-v{version}"   # even ids: another key (partition) each time
    return key.encode(), envelope(applicant, _seq(app_id, version))


def _read_all(topology, ids) -> dict[int, dict | None]:
    return {i: topology.read_decision(i) for i in ids}


def test_resubmissions_keep_their_history_and_the_latest_is_current(make_topology, hbase_server, risk_api):
    topology = make_topology(hbase_server, risk_api, **CONCURRENT)
    ids = range(7001, 7041)
    msgs = []
    for version in range(1, VERSIONS + 1):
        for app_id in ids:
            # every fifth application has v4 published before v3: the seq decides, not the arrival
            msgs.append(_version(app_id, 7 - version if app_id % 5 == 0 and version in (3, 4) else version))
    topology.produce(msgs)
    topology.worker()

    def complete():
        rows = _read_all(topology, ids)
        return all(r is not None and len(r["history"]) == VERSIONS for r in rows.values())

    try:
        wait_for(complete, 120, interval=1.0, what="every version of every application saved")
    except TimeoutError:
        lengths = {i: r and len(r["history"]) for i, r in _read_all(topology, ids).items()}
        raise AssertionError(f"history lengths {lengths}; dlq {topology.dlq()[:3]}\n{topology.logs()}") from None
    rows = _read_all(topology, ids)
    for app_id, row in rows.items():
        assert row["provenance"]["seq"] == _seq(app_id, VERSIONS), f"application {app_id}: an older version is current"
        assert row["applicant"]["annual_inc"] == 40_000 + 1_000 * VERSIONS
        assert [h["provenance"]["seq"] for h in row["history"]] == [_seq(app_id, v) for v in range(1, VERSIONS + 1)]
        assert [h["applicant"]["loan_amnt"] for h in row["history"]] == [5_000 + 100 * v
                                                                          for v in range(1, VERSIONS + 1)]
        assert all(h["decision"] in layout.DECISIONS and h["policy_version"] for h in row["history"])
        assert len({(h["provenance"]["partition"], h["provenance"]["offset"]) for h in row["history"]}) == VERSIONS
    index = topology.index_keys()
    assert sorted(index) == list(ids)
    for app_id, keys in index.items():
        assert sorted(keys) == sorted(h["index_key"].encode() for h in rows[app_id]["history"])
    assert topology.dlq() == []
    events = topology.read_topic(topology.settings.topic_decisions)
    assert len(events) == len(ids) * VERSIONS
    # the time scan shows each application once, with its current decision
    conn = happybase.Connection(topology.hbase.host, topology.hbase.port,
                                table_prefix=topology.env["HBASE_TABLE_PREFIX"])
    try:
        scanned = list(scan_decisions(conn, 0, layout.MAX_TIME_MS))
    finally:
        conn.close()
    assert sorted(r["id"] for r in scanned) == list(ids)
    assert all(r["provenance"]["seq"] == _seq(r["id"], VERSIONS) for r in scanned)


def test_a_record_without_a_timestamp_is_saved_at_its_ingest_time(topology):
    untimed = [_version(app_id, 1) for app_id in range(7101, 7111)]
    timed = [_version(app_id, 1) for app_id in range(7111, 7121)]
    before = now_ms()
    topology.produce(untimed, timestamp_ms=-1)          # Kafka's "no timestamp"
    topology.produce(timed)
    topology.worker()
    expected = set(range(7101, 7121))
    topology.wait_accounted(expected)
    result = topology.reconcile(expected)
    assert result["dlq"] == []
    after = now_ms()
    for app_id in range(7101, 7111):
        row = topology.read_decision(app_id)
        assert row["time_source"] == "ingested" and row["time_ms"] == row["ingested_at"]
        assert before <= row["ingested_at"] <= after
        assert row["provenance"]["timestamp_source"] == "ingested"
        assert row["provenance"]["timestamp_ms"] >= before
    for app_id in range(7111, 7121):
        row = topology.read_decision(app_id)
        assert row["time_source"] == "kafka" and row["provenance"]["timestamp_source"] == "kafka"
        assert before <= row["time_ms"] <= row["ingested_at"]
    conn = happybase.Connection(topology.hbase.host, topology.hbase.port,
                                table_prefix=topology.env["HBASE_TABLE_PREFIX"])
    try:
        scanned = {r["id"] for r in scan_decisions(conn, before, after + 1)}
    finally:
        conn.close()
    assert scanned == expected


def test_a_republished_page_adds_history_but_no_second_index_row(topology):
    """A producer killed before its checkpoint moved publishes a page again: same seq and created_at, new offsets."""
    from credit_core.jsoncodec import dumps

    ids = range(7101, 7131)

    def page(fetched_at: str):
        return [(str(i).encode(), dumps({"applicant": raw_applicant(i),
                                         "provenance": {"source": "api", "seq": i, "fetched_at": fetched_at,
                                                        "created_at": "2026-11-28T10:00:00"}}))
                for i in ids]

    topology.produce(page("2026-11-28T10:00:01Z"))
    topology.produce(page("2026-11-28T10:00:09Z"))
    topology.worker()

    def complete():
        rows = _read_all(topology, ids)
        return all(r is not None and len(r["history"]) == 2 for r in rows.values())

    try:
        wait_for(complete, 120, interval=1.0, what="both copies of every applicant saved")
    except TimeoutError:
        raise AssertionError(f"dlq {topology.dlq()[:3]}\n{topology.logs()}") from None
    index = topology.index_keys()
    assert sorted(index) == list(ids) and all(len(keys) == 1 for keys in index.values()), index
    for row in _read_all(topology, ids).values():
        assert row["provenance"]["created_at"] == "2026-11-28T10:00:00"
