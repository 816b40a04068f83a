"""The background collectors (scraper, DLQ tail, HBase probe), started lazily once per process.

The first request the process serves starts them (gunicorn forks after importing: nothing starts at import or
in create_app)."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from dashboard.deadletters import DeadLetterStore
from dashboard.dlq_tail import DlqTail
from dashboard.history import History
from dashboard.lookup import AuditReader
from dashboard.scraper import Scraper
from dashboard.settings import DashboardSettings

logger = logging.getLogger(__name__)

HBASE_PROBE_EVERY = 5.0     # seconds between two pings of HBase for the services panel


class HBaseProbe:
    """Pings HBase every few seconds; ``status`` says whether it answered."""

    def __init__(self, reader: AuditReader, every: float = HBASE_PROBE_EVERY):
        self.reader = reader
        self.every = every
        self._status: dict[str, Any] = {"up": None, "error": None, "checked_at": None}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-hbase-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.reader.ping()
                up, error = True, None
            except Exception as exc:  # HBase down is a state to show
                up, error = False, f"{type(exc).__name__}: {exc}"[:300]
            with self._lock:
                self._status = {"up": up, "error": error, "checked_at": time.time()}
            self._stop.wait(self.every)


class Collectors:
    """Everything that runs in the background, started by ``ensure_started`` in the serving process only."""

    def __init__(self, settings: DashboardSettings, history: History, store: DeadLetterStore, reader: AuditReader):
        self.settings = settings
        self.history = history
        self.store = store
        self.reader = reader
        self.scraper: Scraper | None = None
        self.tail: DlqTail | None = None
        self.probe: HBaseProbe | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start the collectors unless this process has started them already (cheap when it has)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            s = self.settings
            self.scraper = Scraper(s.targets, self.history, interval=s.scrape_interval, timeout=s.scrape_timeout)
            self.tail = DlqTail(s.kafka.bootstrap, s.topic_dlq, self.store)
            self.probe = HBaseProbe(self.reader)
            self.scraper.start()
            self.tail.start()
            self.probe.start()
            self._pid = os.getpid()
            logger.info("dashboard collectors started in pid %d: %d targets, DLQ %s at %s, HBase at %s",
                        self._pid, len(s.targets), s.topic_dlq, s.kafka.bootstrap, s.hbase.address)

    def hbase_status(self) -> dict[str, Any]:
        return self.probe.status() if self.probe is not None else {"up": None, "error": None, "checked_at": None}

    def stop(self) -> None:
        """Stop whatever runs (tests; gunicorn simply ends the process)."""
        for part in (self.scraper, self.tail, self.probe):
            if part is not None:
                part.stop()
        self._pid = None
