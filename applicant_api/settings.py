"""Applicant API settings: keyword overrides, then the environment, then the defaults below."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

from applicant_api.db import DEFAULT_MYSQL_URL
from credit_core.fields import parse_int

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it.
DEFAULT_TOKEN = None                   # APPLICANT_API_TOKEN  (secret: environment only, never in the repo)
DEFAULT_AUTH = "on"                    # APPLICANT_API_AUTH   ("off" disables bearer auth, explicitly)
DEFAULT_MAX_BODY = 8 * 1024 * 1024     # APPLICANT_API_MAX_BODY        (bytes per POST body; larger -> 413)
DEFAULT_MAX_POST_RECORDS = 5_000       # APPLICANT_API_MAX_POST_RECORDS (records per POST; more -> 413)
DEFAULT_POOL_SIZE = 4                  # APPLICANT_API_POOL_SIZE        (MySQL connections per process)
DEFAULT_POOL_TIMEOUT = 10.0            # APPLICANT_API_POOL_TIMEOUT     (seconds to wait for a free connection)
DEFAULT_LOCK_WAIT = 10                 # APPLICANT_API_LOCK_WAIT        (seconds a page read waits on an open insert)
# MYSQL_URL defaults to applicant_api.db.DEFAULT_MYSQL_URL.

DEFAULT_PAGE_LIMIT = 500
MAX_PAGE_LIMIT = 5_000

_AUTH_VALUES = {"on": True, "true": True, "1": True, "yes": True,
                "off": False, "false": False, "0": False, "no": False}


class ConfigError(ValueError):
    """The configuration is unusable; the app refuses to start."""


@dataclass(frozen=True)
class Settings:
    mysql_url: str = DEFAULT_MYSQL_URL
    token: str | None = DEFAULT_TOKEN
    auth: bool = True
    max_body: int = DEFAULT_MAX_BODY
    max_post_records: int = DEFAULT_MAX_POST_RECORDS
    pool_size: int = DEFAULT_POOL_SIZE
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    lock_wait: int = DEFAULT_LOCK_WAIT

    def __post_init__(self) -> None:
        if not isinstance(self.mysql_url, str) or not self.mysql_url:
            raise ConfigError("MYSQL_URL must be a non-empty string")
        for name, minimum in (("max_body", 1024), ("max_post_records", 1), ("pool_size", 1), ("lock_wait", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if not isinstance(self.pool_timeout, (int, float)) or self.pool_timeout <= 0:
            raise ConfigError(f"pool_timeout must be > 0 seconds, got {self.pool_timeout!r}")
        if self.auth and not self.token:
            raise ConfigError(
                "APPLICANT_API_TOKEN is not set. Set it to the bearer token clients must send, "
                "or set APPLICANT_API_AUTH=off to run without authentication (local use only)."
            )
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8):
            raise ConfigError("APPLICANT_API_TOKEN must be a string of at least 8 characters")


def _int(name: str, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    try:
        return parse_int(raw if isinstance(raw, str) else str(raw))   # ASCII digits only ("1_000", "١" refused)
    except ValueError as exc:
        raise ConfigError(f"{name} {exc}") from None


def _float(name: str, raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _auth(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = _AUTH_VALUES.get(str(raw).strip().lower())
    if value is None:
        raise ConfigError(f"APPLICANT_API_AUTH must be 'on' or 'off', got {raw!r}")
    return value


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``overrides`` (keys are the environment variable names), else the environment, else defaults."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping, got {type(overrides).__name__}")
    env = os.environ if environ is None else environ
    over = dict(overrides or {})

    def get(name: str, default: Any) -> Any:
        if name in over:
            return over[name]
        raw = env.get(name)
        return default if raw is None or raw == "" else raw

    settings = Settings(
        mysql_url=get("MYSQL_URL", DEFAULT_MYSQL_URL),
        token=get("APPLICANT_API_TOKEN", DEFAULT_TOKEN),
        auth=_auth(get("APPLICANT_API_AUTH", DEFAULT_AUTH)),
        max_body=_int("APPLICANT_API_MAX_BODY", get("APPLICANT_API_MAX_BODY", DEFAULT_MAX_BODY)),
        max_post_records=_int("APPLICANT_API_MAX_POST_RECORDS",
                              get("APPLICANT_API_MAX_POST_RECORDS", DEFAULT_MAX_POST_RECORDS)),
        pool_size=_int("APPLICANT_API_POOL_SIZE", get("APPLICANT_API_POOL_SIZE", DEFAULT_POOL_SIZE)),
        pool_timeout=_float("APPLICANT_API_POOL_TIMEOUT", get("APPLICANT_API_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT)),
        lock_wait=_int("APPLICANT_API_LOCK_WAIT", get("APPLICANT_API_LOCK_WAIT", DEFAULT_LOCK_WAIT)),
    )
    if not settings.auth:
        logger.warning("APPLICANT_API_AUTH=off: the applicant API accepts requests without a token")
    return settings
