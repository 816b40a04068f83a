"""topology.worker.app: importing it only creates the app; the environment is read when it is configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from topology.worker.app import TopologyApp, faust_options
from topology.worker.transport import TopologyConsumer

ROOT = Path(__file__).resolve().parents[3]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_importing_the_app_reads_nothing_and_leaves_the_gc_alone():
    code = ("import gc; before = gc.get_threshold(); import topology.worker.app as m; "
            "assert m.app._conf is None, 'configured at import'; "
            "assert gc.get_threshold() == before and gc.get_freeze_count() == 0, 'GC touched at import'")
    result = _python(code, TOPIC_PARTITIONS="four")   # a bad setting is only read when configured
    assert result.returncode == 0, result.stderr[-3000:]


def test_worker_init_tunes_the_gc():
    code = ("import gc; from topology.worker.app import app; app.on_worker_init.send(); "
            "assert gc.get_threshold() == (700, 10, 10), gc.get_threshold(); assert gc.get_freeze_count() > 0")
    result = _python(code, GC_THRESHOLDS="700,10,10")
    assert result.returncode == 0, result.stderr[-3000:]


def test_configuring_sets_faust_from_the_settings(tmp_path):
    app = TopologyApp(env={"TOPOLOGY_APP_ID": "my-topology", "KAFKA_BROKER": "kafka://127.0.0.1:19092",
                           "TOPIC_PARTITIONS": "6", "FAUST_DATADIR": str(tmp_path / "d"), "TOPOLOGY_MODE": "literal"})
    assert app._conf is None
    conf = app.conf
    assert conf.id == "my-topology" and str(conf.broker[0]) == "kafka://127.0.0.1:19092"
    assert conf.topic_partitions == 6 and conf.value_serializer == "orjson" and conf.web_bind == "127.0.0.1"
    assert str(conf.datadir) == str(tmp_path / "d" / "my-topology") and (tmp_path / "d").is_dir()
    assert app.settings.app_id == "my-topology" and app.stage_config.one_by_one
    assert faust_options(app.settings)["producer_max_request_size"] == (1 << 20) + (1 << 16)
    assert app.transport.Consumer is TopologyConsumer
    assert app.pipeline_topics.raw.get_topic_name() == "applicants.raw"
    assert app.emitter.partitions == 6


def test_the_consumer_thread_runs_asyncios_loop_while_the_main_loop_is_uvloop(tmp_path):
    code = ("import asyncio, faust, uvloop\n"
            "from topology.worker.app import app\n"
            "asyncio.set_event_loop(asyncio.new_event_loop())\n"
            "assert isinstance(asyncio.get_event_loop(), uvloop.Loop), type(asyncio.get_event_loop())\n"
            "thread = app.consumer._thread\n"
            "assert type(thread.thread_loop) is asyncio.SelectorEventLoop, type(thread.thread_loop)\n"
            "assert thread._close_thread_loop_on_stop\n")
    result = _python(code, FAUST_LOOP="uvloop", FAUST_DATADIR=str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr[-3000:]
