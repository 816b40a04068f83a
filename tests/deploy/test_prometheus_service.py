"""The Prometheus service on its own: started from the run folder, ready on /-/ready, reloading a changed target
list when asked to start again, stopped by its record."""

from __future__ import annotations

import requests

from deploy.prometheus import Prometheus
from deploy.services import free_port, pid_alive, port_open, wait_for


def active_targets(prometheus: Prometheus) -> dict[str, dict]:
    targets = requests.get(f"{prometheus.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return {t["labels"]["instance"]: t for t in targets}


def test_start_scrape_reload_and_stop(tmp_path):
    port, silent = free_port(), free_port()     # nothing listens on ``silent``
    first = Prometheus(run_dir=tmp_path, port=port, targets={"worker-1": f"http://127.0.0.1:{silent}/metrics"})
    try:
        assert first.start() is True
        pid = first.pid()
        assert pid and requests.get(f"{first.url}/-/ready", timeout=5).status_code == 200
        assert (tmp_path / "prometheus.yml").read_text() == first.config_text()
        assert (tmp_path / "prometheus-data").is_dir()
        assert first.status().split()[1] == "running"

        # A target that does not answer is scraped and seen down: up == 0, with the job and instance labels.
        def scraped_down() -> bool:
            target = active_targets(first).get("worker-1")
            return target is not None and target["health"] == "down"
        wait_for(scraped_down, 30, interval=0.5, what="worker-1 seen down")
        result = requests.get(f"{first.url}/api/v1/query", params={"query": "up"}, timeout=5).json()["data"]["result"]
        assert [(r["metric"]["job"], r["metric"]["instance"], r["value"][1]) for r in result] == [
            ("worker", "worker-1", "0")]

        # Started again with one more worker: the same process reloads the new configuration.
        second = Prometheus(run_dir=tmp_path, port=port, targets={
            "worker-1": f"http://127.0.0.1:{silent}/metrics", "worker-2": f"http://127.0.0.1:{silent}/metrics"})
        assert second.start() is False and second.pid() == pid
        wait_for(lambda: set(active_targets(first)) == {"worker-1", "worker-2"}, 30, interval=0.5,
                 what="worker-2 among the targets after the reload")
        assert second.start() is False and not second.reload_if_changed()   # nothing changed: no reload
    finally:
        first.stop()
    assert not pid_alive(pid) and not port_open("127.0.0.1", port)
    assert not first.pid_file.exists() and not first.record_file.exists()
