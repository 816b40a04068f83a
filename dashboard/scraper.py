"""The scraper: a thread that reads every target's /metrics (and each worker's /health) every interval."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Any

import requests

from dashboard import promtext
from dashboard.history import History
from dashboard.targets import Target

logger = logging.getLogger(__name__)

MAX_METRICS_BYTES = 8 << 20     # a /metrics answer larger than this is refused (a runaway label set)


def fetch_metrics(session: requests.Session, url: str, timeout: float) -> promtext.Snapshot:
    """GET ``url`` and parse it; raises (requests errors, ValueError) when it fails or is not an exposition."""
    resp = session.get(url, timeout=timeout, headers={"Accept": "text/plain"})
    resp.raise_for_status()
    if len(resp.content) > MAX_METRICS_BYTES:
        raise ValueError(f"{len(resp.content)} bytes of metrics is more than {MAX_METRICS_BYTES}")
    return promtext.parse(resp.text)


def fetch_health(session: requests.Session, url: str, timeout: float) -> tuple[dict[str, Any] | None, int]:
    """A worker's GET /health: (its JSON body or None, HTTP status); raises when nothing answered."""
    resp = session.get(url, timeout=timeout)
    try:
        body = resp.json()
    except ValueError:
        body = None
    return (body if isinstance(body, dict) else None), resp.status_code


def _short(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, requests.ConnectionError):
        text = "connection refused or unreachable"
    elif isinstance(exc, requests.Timeout):
        text = "timed out"
    return f"{type(exc).__name__}: {text}"[:300]


class Scraper:
    """Scrapes ``targets`` into ``history`` every ``interval`` seconds, all targets at once."""

    def __init__(self, targets: tuple[Target, ...], history: History, *, interval: float, timeout: float):
        self.targets = targets
        self.history = history
        self.interval = interval
        self.timeout = timeout
        self._stop = threading.Event()
        self._local = threading.local()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(8, len(targets))),
                                                           thread_name_prefix="dashboard-scrape")
        self._thread = threading.Thread(target=self._run, name="dashboard-scraper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False        # no proxy between the dashboard and the processes it watches
        return session

    def scrape_once(self) -> None:
        """One round: every target at once; returns when all answered or timed out."""
        futures = [self._pool.submit(self._scrape, target) for target in self.targets]
        concurrent.futures.wait(futures, timeout=self.timeout * 2 + 1)

    def _scrape(self, target: Target) -> None:
        session = self._session()
        t = time.time()
        snapshot, error = None, None
        try:
            snapshot = fetch_metrics(session, target.url, self.timeout)
        except Exception as exc:  # a target down or answering garbage is a state to show, not a crash
            error = _short(exc)
        health, code, health_error = None, None, None
        if target.health_url is not None:
            try:
                health, code = fetch_health(session, target.health_url, self.timeout)
            except Exception as exc:
                health_error = _short(exc)
        self.history.record(target.name, t, snapshot, error=error, health=health, health_code=code,
                            health_error=health_error)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.scrape_once()
            except Exception:  # never let the loop die: the page would freeze without saying why
                logger.exception("scrape round failed")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
