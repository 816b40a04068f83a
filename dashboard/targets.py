"""DASHBOARD_TARGETS: the processes the dashboard scrapes, as ``name=url`` pairs of their /metrics URLs."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from credit_core.config import Parser

logger = logging.getLogger(__name__)

NAME = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
WORKER_PREFIX = "worker"     # a target named worker-1, worker-2... is a faust worker: it also has /health


@dataclass(frozen=True)
class Target:
    """One scraped process: its name and its /metrics URL."""

    name: str
    url: str

    @property
    def is_worker(self) -> bool:
        return self.name.startswith(WORKER_PREFIX)

    @property
    def health_url(self) -> str | None:
        """A worker's health URL: its /metrics URL with /health as the path; None for other processes."""
        return health_url(self.url) if self.is_worker else None


def health_url(metrics_url: str) -> str:
    """``http://h:p/metrics`` -> ``http://h:p/health`` (the last path segment replaced)."""
    parts = urlsplit(metrics_url)
    path = parts.path.rsplit("/", 1)[0] + "/health"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_targets(text: str) -> tuple[Target, ...]:
    """``"a=http://h:1/metrics,b=http://h:2/metrics"`` -> Targets; ValueError naming the bad item."""
    out: list[Target] = []
    seen: set[str] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not NAME.fullmatch(name):
            raise ValueError(f"{item!r} is not name=url (a name is lower-case letters, digits, '-', '_', '.')")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{name}: {url!r} is not an http(s) URL without query")
        if name in seen:
            raise ValueError(f"{name} is named twice")
        seen.add(name)
        out.append(Target(name, url))
    return tuple(out)


class TargetList(Parser):
    """The DASHBOARD_TARGETS parser: a tuple of Target."""

    expected = "comma separated name=url pairs (the processes' /metrics URLs)"

    def convert(self, raw: str) -> tuple[Target, ...]:
        return parse_targets(raw)

    def check(self, value: Any) -> tuple[Target, ...]:
        if isinstance(value, str):
            return parse_targets(value)
        if not isinstance(value, tuple) or not all(isinstance(t, Target) for t in value):
            raise TypeError(f"must be a tuple of Target, got {value!r}")
        names = [t.name for t in value]
        if len(names) != len(set(names)):
            raise ValueError(f"must name each target once, got {names}")
        return value
