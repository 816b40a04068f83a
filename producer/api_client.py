"""Reads pages of applicants from the applicant API (requests, bearer token, keep-alive)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import orjson
import requests

from producer.settings import ProducerSettings

logger = logging.getLogger(__name__)

PAGE_PATH = "/api/v1/applicants"


# What went wrong, as credit_producer_api_errors_total{kind} names it.
ERROR_KINDS = ("connection", "server_error", "throttled", "bad_page", "rejected")


class ApiError(RuntimeError):
    """A failed page request; ``kind`` is one of ERROR_KINDS."""

    def __init__(self, message: str, kind: str):
        if kind not in ERROR_KINDS:
            raise ValueError(f"kind must be one of {ERROR_KINDS}, got {kind!r}")
        super().__init__(message)
        self.kind = kind


class ApiUnavailable(ApiError):
    """A transient failure (connection refused or timeout, 5xx, 429, garbled page): retry later."""


class ApiRejected(ApiError):
    """A permanent failure (401/403, other 4xx): retrying cannot help; fix the configuration."""

    def __init__(self, message: str, kind: str = "rejected"):
        super().__init__(message, kind)


@dataclass(frozen=True)
class Page:
    after: int                      # the cursor this page was asked for
    applicants: list[dict[str, Any]]
    next_after: int | None
    fetched_at: str                 # ISO 8601 UTC, when the page arrived

    @property
    def count(self) -> int:
        return len(self.applicants)


class ApiClient:
    def __init__(self, settings: ProducerSettings):
        self.base = settings.api_url.rstrip("/")
        self.timeout = settings.http_timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if settings.api_token:
            self.session.headers["Authorization"] = f"Bearer {settings.api_token}"

    def fetch(self, after: int, limit: int) -> Page:
        try:
            resp = self.session.get(self.base + PAGE_PATH, params={"after": after, "limit": limit},
                                    timeout=self.timeout)
        except requests.RequestException as exc:
            raise ApiUnavailable(f"{type(exc).__name__}: {exc}", "connection") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise ApiUnavailable(f"HTTP {resp.status_code}: {resp.text[:200]}",
                                 "throttled" if resp.status_code == 429 else "server_error")
        if resp.status_code in (401, 403):
            raise ApiRejected(f"HTTP {resp.status_code} from {self.base}: check APPLICANT_API_TOKEN")
        if resp.status_code != 200:
            raise ApiRejected(f"HTTP {resp.status_code} from {resp.url}: {resp.text[:300]}")
        fetched_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        try:
            body = orjson.loads(resp.content)
            applicants = body["applicants"]
            next_after = body["next_after"]
            if not isinstance(applicants, list) or (applicants and not isinstance(next_after, int)):
                raise ValueError("applicants must be a list and next_after an int")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ApiUnavailable(f"unreadable page from {resp.url}: {exc}", "bad_page") from None
        return Page(after=after, applicants=applicants, next_after=next_after, fetched_at=fetched_at)

    def close(self) -> None:
        self.session.close()
