"""The scrapes of the last minutes in memory, per target; thread-safe.

Every scrape of the last two minutes is kept, then one every few seconds up to the horizon (15 minutes)."""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from dashboard.promtext import Snapshot

logger = logging.getLogger(__name__)

FINE_SECONDS = 120.0        # every scrape is kept this long
COARSE_STEP = 5.0           # then one scrape every this many seconds


@dataclass(frozen=True)
class Scrape:
    """One successful scrape: when, the samples, and (workers) the /health answer."""

    t: float
    snapshot: Snapshot
    health: dict[str, Any] | None = None


@dataclass
class TargetState:
    """What is known of one target: its kept scrapes and how the last attempts went."""

    name: str
    url: str
    fine: collections.deque = field(default_factory=collections.deque)
    coarse: collections.deque = field(default_factory=collections.deque)
    last_attempt: float | None = None
    last_ok: float | None = None
    error: str | None = None
    health: dict[str, Any] | None = None        # the last /health body (workers)
    health_code: int | None = None              # its HTTP status
    health_error: str | None = None


@dataclass(frozen=True)
class TargetView:
    """A consistent copy of one target's state for the figures (scrapes oldest first)."""

    name: str
    url: str
    scrapes: tuple[Scrape, ...]
    last_attempt: float | None
    last_ok: float | None
    error: str | None
    health: dict[str, Any] | None
    health_code: int | None
    health_error: str | None

    @property
    def latest(self) -> Scrape | None:
        return self.scrapes[-1] if self.scrapes else None


class History:
    """Per-target scrapes within ``horizon`` seconds."""

    def __init__(self, targets: list[tuple[str, str]], horizon: float, *, fine_seconds: float = FINE_SECONDS,
                 coarse_step: float = COARSE_STEP):
        self.horizon = float(horizon)
        self.fine_seconds = min(fine_seconds, self.horizon)
        self.coarse_step = coarse_step
        self._lock = threading.Lock()
        self._targets = {name: TargetState(name, url) for name, url in targets}
        self.version = 0           # bumped on every record: a cache key for computed figures

    def names(self) -> list[str]:
        return list(self._targets)

    def record(self, name: str, t: float, snapshot: Snapshot | None, *, error: str | None = None,
               health: dict[str, Any] | None = None, health_code: int | None = None,
               health_error: str | None = None) -> None:
        """One scrape attempt of ``name`` at ``t``: its samples (None when it failed, with ``error``)."""
        with self._lock:
            state = self._targets[name]
            state.last_attempt = t
            state.health, state.health_code, state.health_error = health, health_code, health_error
            if snapshot is None:
                state.error = error or "no answer"
            else:
                state.last_ok, state.error = t, None
                scrape = Scrape(t, snapshot, health)
                state.fine.append(scrape)
                if not state.coarse or t - state.coarse[-1].t >= self.coarse_step:
                    state.coarse.append(scrape)
            while state.fine and state.fine[0].t < t - self.fine_seconds:
                state.fine.popleft()
            while state.coarse and state.coarse[0].t < t - self.horizon - self.coarse_step:
                state.coarse.popleft()
            self.version += 1

    def view(self) -> dict[str, TargetView]:
        """Every target's scrapes (coarse ones older than the fine window, then the fine ones), copied."""
        with self._lock:
            out = {}
            for name, s in self._targets.items():
                start = s.fine[0].t if s.fine else float("inf")
                scrapes = tuple(c for c in s.coarse if c.t < start) + tuple(s.fine)
                out[name] = TargetView(name, s.url, scrapes, s.last_attempt, s.last_ok, s.error, s.health,
                                       s.health_code, s.health_error)
            return out
