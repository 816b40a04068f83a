"""Helpers for the metrics tests: scrape a real /metrics over HTTP, read samples, find gunicorn's workers."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Callable

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition: (sample name, labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(url: str) -> tuple[Samples, str]:
    """GET ``url`` (a /metrics address) without credentials: its samples and its text."""
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["Content-Type"].startswith("text/plain"), resp.headers["Content-Type"]
    return parse(resp.text), resp.text


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value, 0 when it is absent (a counter nobody incremented yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def matching(samples: Samples, name: str, **labels: str) -> dict[frozenset, float]:
    """Samples named ``name`` whose labels include ``labels``: labels -> value."""
    want = set(labels.items())
    return {lab: v for (n, lab), v in samples.items() if n == name and want <= lab}


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (gunicorn's workers), from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] not in (b"Z", b"X"):
            out.append(int(entry.name))
    return sorted(out)


def per_process_counts(directory: Path, name: str, **labels: str) -> dict[int, float]:
    """What each process's multiprocess counter file holds for the counter sample ``name`` with ``labels``:
    pid -> value (the files of dead workers included)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    out = {}
    for path in sorted(directory.glob("counter_*.db")):
        pid = int(path.stem.split("_")[1])
        merged = MultiProcessCollector.merge([str(path)], accumulate=True)
        for family in merged:
            for s in family.samples:
                if s.name == name and set(labels.items()) <= set(s.labels.items()):
                    out[pid] = out.get(pid, 0.0) + s.value
    return out


def concurrently(send: Callable[[int], int], n: int, threads: int = 8) -> list[int]:
    """Call ``send(i)`` for i in 0..n-1 from ``threads`` threads; the statuses it returned, in order of i."""
    statuses: list[int] = [0] * n
    lock = threading.Lock()
    todo = iter(range(n))

    def work() -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            statuses[i] = send(i)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return statuses


def kill_9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
