"""credit_core.metrics: the value store follows PROMETHEUS_MULTIPROC_DIR whatever was imported first, the gunicorn
hooks' folder handling, bulk histogram observations equal one by one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from credit_core import metrics
from tests.credit_core.prometheus_testlib import parse, value

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def test_multiprocess_mode_holds_when_prometheus_client_was_imported_before_the_variable(tmp_path):
    """gunicorn's master may import prometheus-client (a config file) before on_starting sets the variable; the
    workers it forks must still count in the shared folder, or every scrape shows one worker's share."""
    script = f"""
        import os
        from prometheus_client import values           # picks its value store now: single-process
        assert not values.ValueClass._multiprocess
        from credit_core import metrics
        os.environ[metrics.MULTIPROC_ENV] = {str(tmp_path)!r}   # set later (a launcher's hook)
        metrics.gunicorn_on_starting()                 # as gunicorn's master: empties the folder
        pids = []
        for n in (3, 4):
            pid = os.fork()
            if pid == 0:                               # a worker
                metrics.gunicorn_post_fork()
                metrics.process_metrics().counter("t_requests_total", "d", ("route",)).labels("/a").inc(n)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            assert os.waitpid(pid, 0)[1] == 0
        print(metrics.exposition().decode())
    """
    (tmp_path / "counter_999999.db").write_bytes(b"stale from a previous run")   # emptied at start
    (tmp_path / "keep.txt").write_text("not a metrics file")                      # left alone
    out = _run(script, _env())
    assert value(parse(out), "t_requests_total", route="/a") == 7
    assert len(list(tmp_path.glob("counter_*.db"))) == 2 and (tmp_path / "keep.txt").exists()


def test_on_starting_makes_a_folder_when_none_is_given_and_on_exit_removes_it():
    script = """
        import os
        from pathlib import Path
        from credit_core import metrics
        folder = metrics.gunicorn_on_starting()
        metrics.process_metrics().gauge("t_live", "d", multiprocess_mode="livesum").set(2)
        print(metrics.exposition().decode())
        assert any(Path(folder).glob("gauge_livesum_*.db"))
        metrics.gunicorn_child_exit(None, type("Worker", (), {"pid": os.getpid()})())   # marked dead
        assert not any(Path(folder).glob("gauge_livesum_*.db"))
        metrics.gunicorn_on_exit()
        assert not Path(folder).exists()
        print("removed", folder)
    """
    out = _run(script, _env())
    assert value(parse(out.split("removed")[0]), "t_live") == 2
    assert "removed /" in out


def test_single_process_mode_exports_the_process_collectors():
    out = _run("""
        from credit_core import metrics
        metrics.process_metrics().counter("t_total", "d").inc(5)
        print(metrics.exposition().decode())
    """, _env())
    samples = parse(out)
    assert value(samples, "t_total") == 5
    assert value(samples, "process_cpu_seconds_total") > 0 and value(samples, "process_resident_memory_bytes") > 0
    assert any(name == "python_info" for name, _ in samples)


def test_metrics_are_made_once_by_name():
    pm = metrics.process_metrics()
    first = pm.counter("t_once_total", "d", ("a",))
    assert pm.counter("t_once_total", "d", ("a",)) is first
    with pytest.raises(ValueError, match="exists already"):
        pm.counter("t_once_total", "d", ("b",))
    with pytest.raises(ValueError, match="exists already"):
        pm.gauge("t_once_total", "d", ("a",))


@pytest.mark.parametrize("amounts", [
    [], [0.0], [0.1], [0.1000000001], [1.0], [0.05, 0.1, 0.15, 0.2, 0.95, 1.0, 0.0, 0.3, 0.3],
    [i / 997 for i in range(998)],
])
def test_observe_many_equals_observe_one_by_one(amounts):
    buckets = tuple(round(0.1 * k, 1) for k in range(1, 11))
    one, many = CollectorRegistry(), CollectorRegistry()
    h_one = Histogram("h", "d", buckets=buckets, registry=one)
    h_many = Histogram("h", "d", buckets=buckets, registry=many)
    for a in amounts:
        h_one.observe(a)
    metrics.observe_many(h_many, amounts)
    strip = lambda text: [line for line in text.splitlines() if "_created" not in line]   # noqa: E731
    assert strip(generate_latest(one).decode()) == strip(generate_latest(many).decode())
    assert value(parse(generate_latest(many).decode()), "h_count") == len(amounts)
