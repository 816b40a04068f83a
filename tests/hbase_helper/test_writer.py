"""DecisionWriter against the embedded HBase Thrift server: writes, read-backs, replays, failures."""

from __future__ import annotations

import asyncio
import time

import pytest

from credit_core.messages.decision import DecisionError
from deploy.services import free_port
from hbase_helper import layout
from hbase_helper.settings import HBaseSettings
from hbase_helper.writer import DecisionWriter, count_rows, read_decision
from tests.hbase_helper.rows import without_store_fields



def test_write_then_read_returns_what_was_written(store_writer, store_make_decision):
    decisions = [store_make_decision(i, decision="decline" if i % 3 == 0 else "approve") for i in range(1, 31)]
    before = time.time_ns() // 1_000_000
    store_writer.write(decisions)
    after = time.time_ns() // 1_000_000
    for decision in decisions:
        row = store_writer.read_decision(decision["id"])
        assert without_store_fields(row) == decision
        assert before <= row["saved_at"] <= after
        assert row["row_key"] == layout.row_key(decision["id"]).decode()
    assert store_writer.read_decision(31) is None
    assert store_writer.count_rows() == 30
    assert store_writer.count_rows(layout.INDEX_TABLE) == 30
    assert store_writer.rows_written == 30 and store_writer.calls == 1


def test_replay_overwrites_its_own_rows_without_duplicates(store_writer, store_make_decision):
    first = [store_make_decision(i, raw_ts=1_700_000_000_000 + i) for i in range(1, 21)]
    store_writer.write(first)
    # the same raw records decided again later, differently, with fields now empty
    replay = [store_make_decision(i, raw_ts=1_700_000_000_000 + i, decided_at=1_800_000_000_000 + i,
                                  decision="decline", decided_by="model", probability_of_default=0.51,
                                  risk_band=None, model_version="lr-2024.06")
              for i in range(1, 21)]
    for d in replay:
        d["applicant"]["emp_title"] = None
    store_writer.write(replay[:10])
    store_writer.write(replay[5:])  # overlapping replays
    assert store_writer.count_rows() == 20
    assert store_writer.count_rows(layout.INDEX_TABLE) == 20
    for decision in replay:
        row = store_writer.read_decision(decision["id"])
        assert without_store_fields(row) == decision
        assert row["risk_band"] is None and row["applicant"]["emp_title"] is None


def test_a_repeated_id_in_one_call_keeps_the_last_version(store_writer, store_make_decision):
    store_writer.write([store_make_decision(5, decided_at=1), store_make_decision(6),
                        store_make_decision(5, decided_at=2)])
    assert store_writer.count_rows() == 2
    assert store_writer.read_decision(5)["decided_at"] == 2


def test_small_batches_still_write_everything(store_settings, store_make_decision):
    from hbase_helper.pool import make_pool

    writer = DecisionWriter(store_settings, pool=make_pool(store_settings), batch_cells=7)
    writer.write([store_make_decision(i) for i in range(100, 140)])
    assert writer.count_rows() == 40
    assert writer.count_rows(layout.INDEX_TABLE) == 40


def test_a_bad_decision_fails_the_call_before_anything_is_written(store_writer, store_make_decision):
    good = [store_make_decision(i) for i in range(1, 6)]
    bad = store_make_decision(6, decision="maybe")
    with pytest.raises(DecisionError) as err:
        store_writer.write(good + [bad])
    assert err.value.field == "decision" and err.value.app_id == 6
    assert store_writer.count_rows() == 0
    assert store_writer.count_rows(layout.INDEX_TABLE) == 0


def test_bad_arguments_are_rejected(store_writer):
    with pytest.raises(TypeError):
        store_writer.write({"id": 1})
    store_writer.write([])  # nothing to do is not an error
    with pytest.raises(ValueError):
        DecisionWriter(HBaseSettings(), batch_cells=0)
    with pytest.raises(TypeError):
        DecisionWriter({"host": "x"})


def test_hbase_down_raises_and_a_later_write_succeeds(store_settings, hbase_server, store_make_decision):
    down = store_settings.with_(port=free_port(), timeout_ms=2000)
    writer = DecisionWriter(down)  # building it needs no server
    with pytest.raises(Exception) as err:
        writer.write([store_make_decision(1)])
    assert not isinstance(err.value, DecisionError)
    with pytest.raises(Exception):
        writer.write([store_make_decision(1)])  # each retry tries again, nothing cached
    # the same writer class against the live server: what the agent's retry would reach
    live = DecisionWriter(store_settings)
    live.write([store_make_decision(1)])
    assert live.read_decision(1)["id"] == 1


def test_concurrent_writes_from_an_executor(store_writer, store_make_decision):
    async def main():
        loop = asyncio.get_running_loop()
        batches = [[store_make_decision(b * 100 + i) for i in range(1, 51)] for b in range(1, 5)]
        await asyncio.gather(*(loop.run_in_executor(None, store_writer.write, batch) for batch in batches[:3]),
                             store_writer.write_async(batches[3]))

    asyncio.run(main())
    assert store_writer.count_rows() == 200
    assert store_writer.count_rows(layout.INDEX_TABLE) == 200


def test_module_functions_on_a_plain_connection(store_conn, store_writer, store_make_decision):
    store_writer.write([store_make_decision(77)])
    assert read_decision(store_conn, 77)["id"] == 77
    assert read_decision(store_conn, 78) is None
    assert count_rows(store_conn) == 1


# -- settings ------------------------------------------------------------------

def test_settings_defaults_env_and_overrides():
    default = HBaseSettings.from_env({})
    assert (default.host, default.port, default.table_prefix, default.protocol, default.transport) == \
        ("127.0.0.1", 9090, "", "binary", "buffered")
    assert default.connection_kwargs()["table_prefix"] is None
    env = {"HBASE_HOST": "hbase.internal", "HBASE_PORT": "9095", "HBASE_TABLE_PREFIX": "credit",
           "HBASE_PROTOCOL": "compact", "HBASE_TRANSPORT": "framed", "HBASE_POOL_SIZE": "8",
           "HBASE_TIMEOUT_MS": "5000"}
    s = HBaseSettings.from_env(env, port=9999, host=None)
    assert (s.host, s.port, s.table_prefix, s.protocol, s.transport, s.pool_size, s.timeout_ms) == \
        ("hbase.internal", 9999, "credit", "compact", "framed", 8, 5000)
    assert s.connection_kwargs() == {"host": "hbase.internal", "port": 9999, "timeout": 5000,
                                     "table_prefix": "credit", "protocol": "compact", "transport": "framed"}


@pytest.mark.parametrize("env, message", [
    ({"HBASE_PORT": "abc"}, "HBASE_PORT must be an integer"),
    ({"HBASE_PORT": "70000"}, "HBASE_PORT must be in 1..65535"),
    ({"HBASE_PROTOCOL": "json"}, "HBASE_PROTOCOL must be one of binary, compact"),
    ({"HBASE_TRANSPORT": "http"}, "HBASE_TRANSPORT must be one of buffered, framed"),
    ({"HBASE_POOL_SIZE": "0"}, "HBASE_POOL_SIZE must be >= 1"),
    ({"HBASE_TABLE_PREFIX": "-x"}, "HBASE_TABLE_PREFIX may hold"),
    ({"HBASE_TABLE_PREFIX": "a b"}, "HBASE_TABLE_PREFIX may hold"),
])
def test_settings_reject_bad_values_naming_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        HBaseSettings.from_env(env)


def test_settings_reject_unknown_and_mistyped_arguments():
    with pytest.raises(TypeError):
        HBaseSettings.from_env({}, hots="x")
    with pytest.raises(TypeError):
        HBaseSettings(port="9090")
    with pytest.raises(TypeError):
        HBaseSettings("127.0.0.1")  # keyword-only


def test_the_same_writer_recovers_after_an_hbase_restart(tmp_path, store_make_decision):
    from deploy.services import HBaseServer

    server = HBaseServer(run_dir=tmp_path, port=free_port())
    server.start()
    try:
        writer = DecisionWriter(HBaseSettings(host=server.host, port=server.port, table_prefix="restart",
                                              pool_size=2, timeout_ms=3000))
        writer.write([store_make_decision(i) for i in range(1, 11)])
        server.stop()
        for attempt in range(3):  # what the save agent's retries see while HBase is down
            with pytest.raises(Exception) as err:
                writer.write([store_make_decision(i) for i in range(11, 21)])
            assert not isinstance(err.value, DecisionError)
        server.start()
        writer.write([store_make_decision(i) for i in range(11, 21)])  # the retry that succeeds
        assert writer.count_rows() == 20
        assert writer.count_rows(layout.INDEX_TABLE) == 20
        assert writer.read_decision(15)["id"] == 15
    finally:
        server.stop()


def test_module_functions_open_their_own_connection_from_settings(store_settings, store_writer,
                                                                   store_make_decision):
    store_writer.write([store_make_decision(i) for i in range(1, 4)])
    where = dict(host=store_settings.host, port=store_settings.port, table_prefix=store_settings.table_prefix)
    assert count_rows(**where) == 3
    assert count_rows(table=layout.INDEX_TABLE, **where) == 3
    assert read_decision(None, 2, **where)["id"] == 2
    with pytest.raises(ValueError):
        count_rows(table="members", **where)
    with pytest.raises(TypeError):
        count_rows(object(), host="x")
