"""What the blueprints share: settings, the history, the dead letters, the HBase reader, the collectors."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from flask import current_app

from dashboard.auth import LoginThrottle
from dashboard.collectors import Collectors
from dashboard.deadletters import DeadLetterStore
from dashboard.history import History
from dashboard.lookup import AuditReader
from dashboard.settings import DashboardSettings

logger = logging.getLogger(__name__)

EXTENSION = "dashboard"
CACHE_SECONDS = 0.5         # a figure computed less than this long ago (and no scrape since) is served again


@dataclass
class DashboardState:
    settings: DashboardSettings
    chartjs: Path
    history: History
    store: DeadLetterStore
    reader: AuditReader
    collectors: Collectors
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    _cache: dict[str, tuple[int, float, Any]] = field(default_factory=dict)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: DashboardSettings) -> "DashboardState":
        history = History([(t.name, t.url) for t in settings.targets], settings.history_seconds)
        store = DeadLetterStore(keep=settings.dlq_keep, index_max=settings.dlq_index_max)
        reader = AuditReader(settings.hbase)
        return cls(settings=settings, chartjs=settings.chartjs_path(), history=history, store=store, reader=reader,
                   collectors=Collectors(settings, history, store, reader))

    def cached(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, reused while no scrape came in and it is younger than CACHE_SECONDS."""
        now = time.monotonic()
        version = self.history.version
        with self._cache_lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == version and now - hit[1] < CACHE_SECONDS:
                return hit[2]
        value = compute()
        with self._cache_lock:
            self._cache[name] = (version, now, value)
        return value


def state() -> DashboardState:
    return current_app.extensions[EXTENSION]
