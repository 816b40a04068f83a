"""Risk API settings: every value comes from an environment variable with a documented default."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from credit_core.config import ConfigError, Parser, boolean, choice, integer, number, setting, text
from credit_core.config import Settings as BaseSettings
from credit_core.tokens import RISK_API_TOKEN

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
# The artifact shipped in the package (trained on seeded synthetic data; see risk_api/models/README.md).
DEFAULT_MODEL_PATH = PACKAGE_DIR / "models" / "default.json"   # RISK_MODEL_PATH
# Probability of default at or above which an applicant is declined. "model" uses the threshold stored in the
# artifact, chosen at training so that 20% of eligible holdout applicants (grades A-D, income >= 20,000) are declined.
DEFAULT_THRESHOLD = "model"                                     # RISK_THRESHOLD
DEFAULT_MAX_BATCH = 10_000                                      # RISK_MAX_BATCH
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024                       # RISK_MAX_BODY_BYTES
# How often (seconds) a worker checks RISK_MODEL_PATH's mtime and reloads a changed artifact; 0 turns the watch off.
DEFAULT_WATCH_SECONDS = 2.0                                     # RISK_MODEL_WATCH_SECONDS
DEFAULT_AUTH = "on"                                             # RISK_API_AUTH ("off" disables bearer auth)
# RISK_API_TOKEN has no default: the app refuses to start without it unless RISK_API_AUTH=off.
# Admin routes (/api/v1/admin/*: reload, reload status with the artifact's path and last error) take only
# RISK_ADMIN_TOKEN, whatever RISK_API_AUTH says. "auto": enabled exactly when RISK_ADMIN_TOKEN is set; "on": the app
# refuses to start without RISK_ADMIN_TOKEN; "off": the routes do not exist (404).
DEFAULT_ADMIN_ROUTES = "auto"                                   # RISK_ADMIN_ROUTES (auto, on, off)
# Applicants with a model input outside the range seen in training are scored with that input clipped to the range
# and get an out-of-range reason code ("flag"), or are declined outright with that reason code ("decline").
DEFAULT_OUT_OF_RANGE = "flag"                                   # RISK_OUT_OF_RANGE (flag, decline)
ADMIN_ROUTES = ("auto", "on", "off")
OUT_OF_RANGE = ("flag", "decline")
DEFAULT_HOST = "127.0.0.1"                                      # RISK_API_HOST
DEFAULT_PORT = 5002                                             # RISK_API_PORT
DEFAULT_WORKERS = 2                                             # RISK_API_WORKERS
# Threads per gunicorn worker; > 1 selects the gthread worker, which keeps client connections alive.
DEFAULT_THREADS = 2                                             # RISK_API_THREADS

# Request line and header limits, gunicorn's defaults; the app enforces them too, so any server answers alike.
MAX_REQUEST_LINE = 4094
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190


# One error type for every package's settings; the old name stays for the app and its tests.
SettingsError = ConfigError


class _Threshold(Parser):
    """"model" (the artifact's threshold: None here) or a probability in [0, 1]."""

    expected = "'model' or a number in [0, 1]"

    def convert(self, raw: str) -> float | None:
        return None if raw.lower() == "model" else float(raw)

    def check(self, value: Any) -> float:
        return number(min=0.0, max=1.0).check(value)


@dataclass(frozen=True, kw_only=True)
class RiskSettings(BaseSettings):
    model_path: str = setting("RISK_MODEL_PATH", str(DEFAULT_MODEL_PATH), parse=text(nonempty=True))
    threshold: float | None = setting("RISK_THRESHOLD", None, parse=_Threshold())   # None: DEFAULT_THRESHOLD
    max_batch: int = setting("RISK_MAX_BATCH", DEFAULT_MAX_BATCH, parse=integer(min=1))
    max_body_bytes: int = setting("RISK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, parse=integer(min=1024))
    watch_seconds: float = setting("RISK_MODEL_WATCH_SECONDS", DEFAULT_WATCH_SECONDS, parse=number(min=0.0))
    auth: bool = setting("RISK_API_AUTH", boolean().convert(DEFAULT_AUTH), parse=boolean())
    api_token: str | None = setting(RISK_API_TOKEN)
    admin_token: str | None = setting("RISK_ADMIN_TOKEN", None, secret=True)
    admin_routes: str = setting("RISK_ADMIN_ROUTES", DEFAULT_ADMIN_ROUTES, parse=choice(*ADMIN_ROUTES))
    out_of_range: str = setting("RISK_OUT_OF_RANGE", DEFAULT_OUT_OF_RANGE, parse=choice(*OUT_OF_RANGE))

    def flask_config(self) -> dict:
        """The Flask config keys the app reads."""
        return {
            "MODEL_PATH": self.model_path,
            "THRESHOLD": self.threshold,
            "MAX_BATCH": self.max_batch,
            "MAX_CONTENT_LENGTH": self.max_body_bytes,
            "WATCH_SECONDS": self.watch_seconds,
            "AUTH": self.auth,
            "API_TOKEN": self.api_token,
            "ADMIN_TOKEN": self.admin_token,
            "ADMIN_ROUTES": self.admin_routes,
            "OUT_OF_RANGE": self.out_of_range,
        }


def from_env(env: Mapping[str, str] | None = None) -> dict:
    """Flask config keys read from the environment (``env`` defaults to os.environ)."""
    return RiskSettings.from_env(env).flask_config()


def admin_routes_enabled(cfg: dict) -> bool:
    """Whether the admin routes exist; SettingsError when they are switched on without RISK_ADMIN_TOKEN."""
    mode = cfg.get("ADMIN_ROUTES", DEFAULT_ADMIN_ROUTES)
    if mode not in ADMIN_ROUTES:
        raise SettingsError(f"RISK_ADMIN_ROUTES must be one of auto, on, off, got {mode!r}")
    token = cfg.get("ADMIN_TOKEN")
    if mode == "on" and not token:
        raise SettingsError("RISK_ADMIN_ROUTES=on but RISK_ADMIN_TOKEN is not set: set an admin token (different "
                            "from RISK_API_TOKEN), or RISK_ADMIN_ROUTES=off")
    if mode != "off" and token and token == cfg.get("API_TOKEN"):
        raise SettingsError("RISK_ADMIN_TOKEN must differ from RISK_API_TOKEN")
    return mode == "on" or (mode == "auto" and bool(token))
