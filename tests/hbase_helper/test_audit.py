"""The audit reads (get by id, time-range scans) as functions and as the CLI, against the embedded server."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import orjson
import pytest

from hbase_helper import layout
from hbase_helper.audit import get_decision, parse_time, scan_decisions
from tests.hbase_helper.rows import without_store_fields

T0 = 1_717_243_200_000  # 2024-06-01T12:00:00Z



@pytest.fixture
def audit_written(store_writer, store_make_decision):
    """60 decisions, raw times T0 + 1000*i (two ids share each second), every third one declined."""
    decisions = [store_make_decision(i, raw_ts=T0 + 1000 * (i // 2),
                                     decision="decline" if i % 3 == 0 else "approve")
                 for i in range(1, 61)]
    store_writer.write(decisions)
    return {d["id"]: d for d in decisions}


def _expected(written, start, stop, decision=None):
    rows = [d for d in written.values() if start <= d["provenance"]["timestamp_ms"] < stop
            and (decision is None or d["decision"] == decision)]
    return [d["id"] for d in sorted(rows, key=lambda d: (d["provenance"]["timestamp_ms"], d["id"]))]


def test_get_is_one_get_of_what_was_written(store_conn, audit_written):
    assert without_store_fields(get_decision(store_conn, 17)) == audit_written[17]
    assert get_decision(store_conn, 1000) is None


def test_scan_returns_the_range_in_time_order(store_conn, audit_written):
    start, stop = T0 + 5_000, T0 + 20_000
    rows = list(scan_decisions(store_conn, start, stop))
    assert [r["id"] for r in rows] == _expected(audit_written, start, stop)
    assert len(rows) == 30
    assert [without_store_fields(r) for r in rows] == [audit_written[r["id"]] for r in rows]
    times = [r["provenance"]["timestamp_ms"] for r in rows]
    assert times == sorted(times) and times[0] == start and times[-1] == stop - 1000


def test_scan_filters_declines_and_limits(store_conn, audit_written):
    everything = (T0, T0 + 100_000)
    declines = [r["id"] for r in scan_decisions(store_conn, *everything, decision="decline")]
    assert declines == _expected(audit_written, *everything, "decline") and len(declines) == 20
    approvals = [r["id"] for r in scan_decisions(store_conn, *everything, decision="approve")]
    assert len(approvals) == 40 and not set(approvals) & set(declines)
    assert [r["id"] for r in scan_decisions(store_conn, *everything, limit=7)] == \
        _expected(audit_written, *everything)[:7]
    assert [r["id"] for r in scan_decisions(store_conn, *everything, decision="decline", limit=3)] == declines[:3]
    assert list(scan_decisions(store_conn, T0 - 10_000, T0)) == []
    assert list(scan_decisions(store_conn, T0, T0)) == []


def test_scan_after_a_replay_has_no_duplicates_and_no_stale_entries(store_conn, store_writer, audit_written,
                                                                    store_make_decision):
    everything = (T0, T0 + 100_000)
    replay = [dict(d, decided_at=d["decided_at"] + 60_000) for d in list(audit_written.values())[:20]]
    store_writer.write(replay)
    assert len(list(scan_decisions(store_conn, *everything))) == 60
    # the same id published to applicants.raw again (a new raw time): the old index entry is stale
    moved = store_make_decision(4, raw_ts=T0 + 500_000, decision="decline")
    store_writer.write([moved])
    ids = [r["id"] for r in scan_decisions(store_conn, *everything)]
    assert 4 not in ids and len(ids) == 59
    assert [r["id"] for r in scan_decisions(store_conn, T0 + 400_000, T0 + 600_000)] == [4]


def test_scan_rejects_bad_arguments(store_conn):
    with pytest.raises(ValueError):
        scan_decisions(store_conn, T0, T0 - 1)
    with pytest.raises(ValueError):
        scan_decisions(store_conn, T0, T0 + 1, decision="declined")
    with pytest.raises(ValueError):
        scan_decisions(store_conn, T0, T0 + 1, limit=0)
    with pytest.raises(TypeError):
        scan_decisions(store_conn, "yesterday", T0)


def test_parse_time_accepts_epoch_ms_and_iso():
    assert parse_time("1717243200000") == T0
    assert parse_time("2024-06-01T12:00:00Z") == T0
    assert parse_time("2024-06-01T14:00:00+02:00") == T0
    assert parse_time("2024-06-01 12:00:00") == T0  # no offset: UTC
    assert parse_time("2024-06-01") == int(datetime(2024, 6, 1, tzinfo=timezone.utc).timestamp() * 1000)
    for bad in ("", "yesterday", "-5", "2024-13-01", "99999999999999"):
        with pytest.raises(ValueError):
            parse_time(bad)


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "hbase_helper.audit", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_get_prints_what_was_written(audit_env, audit_written):
    result = _cli(audit_env, "get", "17")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    row = orjson.loads(lines[0])
    assert without_store_fields(row) == audit_written[17]
    assert row["row_key"] == layout.row_key(17).decode()

    missing = _cli(audit_env, "get", "999")
    assert missing.returncode == 1 and missing.stdout == ""
    assert "no decision stored for application 999" in missing.stderr


def test_cli_scan_by_time_with_decision_and_limit(audit_env, audit_written):
    result = _cli(audit_env, "scan", "--from", "2024-06-01T12:00:05Z", "--to", str(T0 + 20_000))
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == _expected(audit_written, T0 + 5_000, T0 + 20_000)
    assert [without_store_fields(r) for r in rows] == [audit_written[r["id"]] for r in rows]

    result = _cli(audit_env, "scan", "--from", "2024-06-01", "--to", "2024-06-02", "--decision", "decline",
                  "--limit", "4")
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == _expected(audit_written, T0 - 43_200_000, T0 + 43_200_000, "decline")[:4]
    assert all(r["decision"] == "decline" for r in rows)


@pytest.mark.parametrize("args, message", [
    (["get", "abc"], "an application id is a positive integer, got 'abc'"),
    (["get", "0"], "an application id is a positive integer"),
    (["get"], "Missing argument 'ID'"),
    (["scan", "--from", "yesterday", "--to", "2024-06-02"], "'yesterday' is neither epoch milliseconds nor"),
    (["scan", "--from", "2024-06-02", "--to", "2024-06-01"], "is before --from"),
    (["scan", "--from", "2024-06-01"], "Missing option '--to'"),
    (["scan", "--from", "1", "--to", "2", "--decision", "maybe"], "'maybe' is not one of 'approve', 'decline'"),
    (["scan", "--from", "1", "--to", "2", "--limit", "0"], "0 is not in the range x>=1"),
])
def test_cli_bad_input_exits_2_with_a_message(audit_offline_env, args, message):
    result = _cli(audit_offline_env, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_cli_bad_settings_and_unreachable_hbase(audit_offline_env):
    env = dict(audit_offline_env, HBASE_PORT="not-a-port")
    result = _cli(env, "get", "1")
    assert result.returncode == 2 and "HBASE_PORT must be an integer" in result.stderr

    env = audit_offline_env
    result = _cli(env, "get", "1")
    assert result.returncode == 1
    assert f"HBase at 127.0.0.1:{env['HBASE_PORT']} failed" in result.stderr


def test_cli_explains_missing_tables(audit_env):
    # this test's prefix has no tables: nothing was written under it
    for args in (["get", "1"], ["scan", "--from", "0", "--to", "5"]):
        result = _cli(audit_env, *args)
        assert result.returncode == 1 and result.stdout == ""
        assert "has no decisions tables" in result.stderr
        assert audit_env["HBASE_TABLE_PREFIX"] in result.stderr
