"""Risk API settings: every value comes from an environment variable with a documented default."""

from __future__ import annotations

import logging
import os
from pathlib import Path

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
DEFAULT_HOST = "127.0.0.1"                                      # RISK_API_HOST
DEFAULT_PORT = 5002                                             # RISK_API_PORT
DEFAULT_WORKERS = 2                                             # RISK_API_WORKERS
# Threads per gunicorn worker; > 1 selects the gthread worker, which keeps client connections alive.
DEFAULT_THREADS = 2                                             # RISK_API_THREADS

# Request line and header limits, gunicorn's defaults; the app enforces them too, so any server answers alike.
MAX_REQUEST_LINE = 4094
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190


class SettingsError(ValueError):
    """A setting from the environment is unusable."""


def _env(name: str, env: dict | None) -> str | None:
    value = (os.environ if env is None else env).get(name)
    return None if value is None or value.strip() == "" else value.strip()


def _number(name: str, raw: str, kind: type, lo: float, hi: float | None = None):
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if value != value or value < lo or (hi is not None and value > hi):
        raise SettingsError(f"{name} must be in [{lo}, {hi if hi is not None else 'inf'}], got {raw!r}")
    return value


def _choice(name: str, env: dict | None, default: str, choices: tuple[str, ...]) -> str:
    value = (_env(name, env) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def from_env(env: dict | None = None) -> dict:
    """Flask config keys read from the environment (``env`` defaults to os.environ)."""
    threshold_raw = _env("RISK_THRESHOLD", env) or DEFAULT_THRESHOLD
    threshold = None if threshold_raw == "model" else _number("RISK_THRESHOLD", threshold_raw, float, 0.0, 1.0)
    auth = (_env("RISK_API_AUTH", env) or DEFAULT_AUTH).lower()
    if auth not in ("on", "off"):
        raise SettingsError(f"RISK_API_AUTH must be 'on' or 'off', got {auth!r}")
    return {
        "MODEL_PATH": _env("RISK_MODEL_PATH", env) or str(DEFAULT_MODEL_PATH),
        "THRESHOLD": threshold,
        "MAX_BATCH": _number("RISK_MAX_BATCH", _env("RISK_MAX_BATCH", env) or str(DEFAULT_MAX_BATCH), int, 1),
        "MAX_CONTENT_LENGTH": _number("RISK_MAX_BODY_BYTES",
                                      _env("RISK_MAX_BODY_BYTES", env) or str(DEFAULT_MAX_BODY_BYTES), int, 1024),
        "WATCH_SECONDS": _number("RISK_MODEL_WATCH_SECONDS",
                                 _env("RISK_MODEL_WATCH_SECONDS", env) or str(DEFAULT_WATCH_SECONDS), float, 0.0),
        "AUTH": auth == "on",
        "API_TOKEN": _env("RISK_API_TOKEN", env),
        "ADMIN_TOKEN": _env("RISK_ADMIN_TOKEN", env),
        "ADMIN_ROUTES": _choice("RISK_ADMIN_ROUTES", env, DEFAULT_ADMIN_ROUTES, ("auto", "on", "off")),
        "OUT_OF_RANGE": _choice("RISK_OUT_OF_RANGE", env, DEFAULT_OUT_OF_RANGE, ("flag", "decline")),
    }


def admin_routes_enabled(cfg: dict) -> bool:
    """Whether the admin routes exist; SettingsError when they are switched on without RISK_ADMIN_TOKEN."""
    mode = cfg.get("ADMIN_ROUTES", DEFAULT_ADMIN_ROUTES)
    if mode not in ("auto", "on", "off"):
        raise SettingsError(f"RISK_ADMIN_ROUTES must be one of auto, on, off, got {mode!r}")
    token = cfg.get("ADMIN_TOKEN")
    if mode == "on" and not token:
        raise SettingsError("RISK_ADMIN_ROUTES=on but RISK_ADMIN_TOKEN is not set: set an admin token (different "
                            "from RISK_API_TOKEN), or RISK_ADMIN_ROUTES=off")
    if mode != "off" and token and token == cfg.get("API_TOKEN"):
        raise SettingsError("RISK_ADMIN_TOKEN must differ from RISK_API_TOKEN")
    return mode == "on" or (mode == "auto" and bool(token))
