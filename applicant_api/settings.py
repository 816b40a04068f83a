"""Applicant API settings: keyword overrides, then the environment, then the defaults below."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

from applicant_api.db import DEFAULT_MYSQL_URL
from credit_core.config import ConfigError, boolean, describe, integer, positive, setting, text
from credit_core.config import Settings as BaseSettings
from credit_core.tokens import APPLICANT_API_TOKEN

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it. APPLICANT_API_TOKEN
# (secret: environment only, never in the repo, no default) is credit_core.tokens'.
DEFAULT_AUTH = "on"                    # APPLICANT_API_AUTH   ("off" disables bearer auth, explicitly)
DEFAULT_MAX_BODY = 8 * 1024 * 1024     # APPLICANT_API_MAX_BODY        (bytes per POST body; larger -> 413)
DEFAULT_MAX_POST_RECORDS = 5_000       # APPLICANT_API_MAX_POST_RECORDS (records per POST; more -> 413)
DEFAULT_POOL_SIZE = 4                  # APPLICANT_API_POOL_SIZE        (MySQL connections per process)
DEFAULT_POOL_TIMEOUT = 10.0            # APPLICANT_API_POOL_TIMEOUT     (seconds to wait for a free connection)
DEFAULT_LOCK_WAIT = 10                 # APPLICANT_API_LOCK_WAIT        (seconds a page read waits on an open insert)
# MYSQL_URL defaults to applicant_api.db.DEFAULT_MYSQL_URL.

DEFAULT_PAGE_LIMIT = 500
MAX_PAGE_LIMIT = 5_000
MIN_TOKEN_LENGTH = 8


@dataclass(frozen=True, kw_only=True)
class Settings(BaseSettings):
    # The URL carries the database password.
    mysql_url: str = setting("MYSQL_URL", DEFAULT_MYSQL_URL, parse=text(nonempty=True), secret=True)
    token: str | None = setting(APPLICANT_API_TOKEN)
    auth: bool = setting("APPLICANT_API_AUTH", boolean().convert(DEFAULT_AUTH), parse=boolean())
    max_body: int = setting("APPLICANT_API_MAX_BODY", DEFAULT_MAX_BODY, parse=integer(min=1024))
    max_post_records: int = setting("APPLICANT_API_MAX_POST_RECORDS", DEFAULT_MAX_POST_RECORDS,
                                    parse=integer(min=1))
    pool_size: int = setting("APPLICANT_API_POOL_SIZE", DEFAULT_POOL_SIZE, parse=integer(min=1))
    pool_timeout: float = setting("APPLICANT_API_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT, parse=positive())
    lock_wait: int = setting("APPLICANT_API_LOCK_WAIT", DEFAULT_LOCK_WAIT, parse=integer(min=1))

    def validate(self) -> None:
        if self.auth and not self.token:
            raise ConfigError(
                "APPLICANT_API_TOKEN is not set. Set it to the bearer token clients must send, "
                "or set APPLICANT_API_AUTH=off to run without authentication (local use only)."
            )
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"APPLICANT_API_TOKEN must be a string of at least {MIN_TOKEN_LENGTH} characters")


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``overrides`` (keys are the environment variable names; other keys are ignored), else
    the environment, else defaults. A string override is read like the variable's text."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping, got {type(overrides).__name__}")
    env = dict(os.environ if environ is None else environ)
    paths = {d.env: d.path for d in describe(Settings)}
    values: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name not in paths:
            continue
        if isinstance(value, str):
            env[name] = value
        elif value is not None:
            values[paths[name]] = value
        else:
            env.pop(name, None)  # None: the variable unset
    settings = Settings.from_env(env, **values)
    if not settings.auth:
        logger.warning("APPLICANT_API_AUTH=off: the applicant API accepts requests without a token")
    return settings
