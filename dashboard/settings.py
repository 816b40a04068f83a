"""Dashboard settings: keyword overrides, then the environment, then the defaults below."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from credit_core.broker import TOPIC_DLQ, KafkaSettings
from credit_core.config import (ConfigError, Settings, choice, describe, integer, nested, number, positive, setting,
                                text)
from dashboard.targets import Target, TargetList, parse_targets
from hbase_helper.settings import HBaseSettings

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it. KAFKA_BROKER is
# credit_core.broker's, HBASE_* hbase_helper.settings'. DASHBOARD_TOKEN is a secret: environment only, no default.
DEFAULT_HOST = "127.0.0.1"              # DASHBOARD_HOST (gunicorn's bind address, `python -m dashboard`)
DEFAULT_PORT = 5003                     # DASHBOARD_PORT
DEFAULT_TARGETS = ("applicant-api=http://127.0.0.1:5001/metrics,risk-api=http://127.0.0.1:5002/metrics,"
                   "producer=http://127.0.0.1:9464/metrics,worker-1=http://127.0.0.1:6067/metrics,"
                   "worker-2=http://127.0.0.1:6068/metrics")   # DASHBOARD_TARGETS (the local stack's defaults)
DEFAULT_SCRAPE_INTERVAL = 1.0           # DASHBOARD_SCRAPE_INTERVAL (seconds between two scrapes of a target)
DEFAULT_SCRAPE_TIMEOUT = 0.9            # DASHBOARD_SCRAPE_TIMEOUT (seconds per /metrics or /health request)
DEFAULT_HISTORY_SECONDS = 900           # DASHBOARD_HISTORY_SECONDS (the 15 minutes kept in memory)
DEFAULT_DLQ_KEEP = 500                  # DASHBOARD_DLQ_KEEP (latest dead letters kept whole)
DEFAULT_DLQ_INDEX_MAX = 200_000         # DASHBOARD_DLQ_INDEX_MAX (application ids indexed from the DLQ, ~200 B each)
DEFAULT_CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"   # DASHBOARD_CHARTJS (Debian's libjs-chart.js)
DEFAULT_SESSION_SECONDS = 12 * 3600     # DASHBOARD_SESSION_SECONDS (a login lasts this long)
DEFAULT_MAX_BODY = 4096                 # DASHBOARD_MAX_BODY (bytes of a request body; larger -> 413)
DEFAULT_COOKIE_SECURE = "auto"          # DASHBOARD_COOKIE_SECURE: auto (Secure on https requests) | on | off
MIN_TOKEN_LENGTH = 8

DASHBOARD_TOKEN_DOC = "bearer token of the dashboard's data routes, and what its login form asks for"


@dataclass(frozen=True, kw_only=True)
class DashboardSettings(Settings):
    host: str = setting("DASHBOARD_HOST", DEFAULT_HOST, parse=text(nonempty=True))
    port: int = setting("DASHBOARD_PORT", DEFAULT_PORT, parse=integer(min=1, max=65535))
    token: str | None = setting("DASHBOARD_TOKEN", None, secret=True, doc=DASHBOARD_TOKEN_DOC)
    targets: tuple[Target, ...] = setting("DASHBOARD_TARGETS", parse_targets(DEFAULT_TARGETS), parse=TargetList(),
                                          empty=True)
    topic_dlq: str = setting(TOPIC_DLQ)
    scrape_interval: float = setting("DASHBOARD_SCRAPE_INTERVAL", DEFAULT_SCRAPE_INTERVAL,
                                     parse=number(min=0.1, max=60))
    scrape_timeout: float = setting("DASHBOARD_SCRAPE_TIMEOUT", DEFAULT_SCRAPE_TIMEOUT, parse=positive())
    history_seconds: int = setting("DASHBOARD_HISTORY_SECONDS", DEFAULT_HISTORY_SECONDS,
                                   parse=integer(min=60, max=6 * 3600))
    dlq_keep: int = setting("DASHBOARD_DLQ_KEEP", DEFAULT_DLQ_KEEP, parse=integer(min=1, max=100_000))
    dlq_index_max: int = setting("DASHBOARD_DLQ_INDEX_MAX", DEFAULT_DLQ_INDEX_MAX, parse=integer(min=1))
    chartjs: str = setting("DASHBOARD_CHARTJS", DEFAULT_CHARTJS, parse=text(nonempty=True))
    session_seconds: int = setting("DASHBOARD_SESSION_SECONDS", DEFAULT_SESSION_SECONDS,
                                   parse=integer(min=60, max=30 * 86400))
    max_body: int = setting("DASHBOARD_MAX_BODY", DEFAULT_MAX_BODY, parse=integer(min=256, max=1 << 20))
    cookie_secure: str = setting("DASHBOARD_COOKIE_SECURE", DEFAULT_COOKIE_SECURE, parse=choice("auto", "on", "off"))
    kafka: KafkaSettings = nested(KafkaSettings)
    hbase: HBaseSettings = nested(HBaseSettings)

    def validate(self) -> None:
        if not self.token:
            raise ConfigError("DASHBOARD_TOKEN is not set: set it to the secret the dashboard's login form and "
                              "data routes ask for (environment only; no default)")
        if len(self.token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"DASHBOARD_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
        if self.scrape_timeout > self.scrape_interval * 5:
            raise ConfigError("DASHBOARD_SCRAPE_TIMEOUT must be at most 5 x DASHBOARD_SCRAPE_INTERVAL, got "
                              f"{self.scrape_timeout!r} s for an interval of {self.scrape_interval!r} s")

    def chartjs_path(self) -> Path:
        """Chart.js from Debian's libjs-chart.js; ConfigError saying how to install it when it is missing."""
        path = Path(self.chartjs)
        if not path.is_file():
            raise ConfigError(f"Chart.js is missing at {path} (DASHBOARD_CHARTJS): the dashboard serves it itself, "
                              "offline. Install Debian's package: sudo apt-get install -y libjs-chart.js "
                              "(or run the bootstrap), or point DASHBOARD_CHARTJS at chart.min.js")
        return path


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> DashboardSettings:
    """Settings from ``overrides`` (keys are environment variable names; other keys are ignored; a string is
    read like the variable's text, None unsets it), else the environment, else defaults."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping, got {type(overrides).__name__}")
    env = dict(os.environ if environ is None else environ)
    known = {d.env for d in describe(DashboardSettings)}
    for name, value in (overrides or {}).items():
        if name not in known:
            continue
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return DashboardSettings.from_env(env)
