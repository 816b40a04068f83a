"""The risk API client used by submit: one POST per batch, on the event loop (aiohttp), retrying what is transient.

What each answer means here (the stream waits rather than drop anything):

- connection errors, timeouts, 5xx, 408 and 429: transient; retried forever
  with exponential backoff and jitter, logged at WARNING;
- 401, 403, 404, 405: the request is not wrong, our configuration is (token,
  URL); dead-lettering every applicant until someone fixes a secret would
  flood the DLQ with good records, so these are retried forever too, logged
  at ERROR, and nothing moves until the configuration is fixed (restart with
  the right RISK_API_TOKEN / RISK_API_URL; the uncommitted offsets replay);
- any other 4xx for a whole batch (400, 413, 422...) or a 200 whose body is
  not the documented answer: something in the batch (or the API) is broken in
  a way a retry cannot fix.  ``BatchRejected`` is raised and submit splits the
  batch in halves until the applicants that still fail are alone; each of
  those is dead-lettered with the API's answer.  A single poison applicant in
  a batch of n costs about 2*log2(n) extra requests; a wholly broken API costs
  2n-1 requests per batch and dead-letters the batch (replayable from the DLQ).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Sequence

import aiohttp

from credit_core.jsoncodec import dumps, loads
from credit_core.retry import retry_forever

logger = logging.getLogger(__name__)

SCORE_PATH = "/api/v1/score"
TRANSIENT_STATUS = frozenset({408, 429})
CONFIG_STATUS = frozenset({401, 403, 404, 405})


class BatchRejected(Exception):
    """The API refused the batch as a whole (4xx) or answered something unusable."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Retry(Exception):
    def __init__(self, reason: str, config: bool = False):
        super().__init__(reason)
        self.config = config


def _level(exc: BaseException) -> int:
    # A configuration error (token, URL) waits for an operator: louder than a transient failure.
    return logging.ERROR if getattr(exc, "config", False) else logging.WARNING


def _message(body: bytes) -> str:
    try:
        data = loads(body)
    except Exception:
        return body[:300].decode("utf-8", "replace")
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if key in data:
                val = data[key]
                return val if isinstance(val, str) else dumps(val).decode()
    return dumps(data).decode()[:300]


class RiskClient:
    def __init__(self, base_url: str, token: str, *, timeout: float, retry_base: float, retry_cap: float,
                 on_retry: Callable[[BaseException], None] | None = None):
        """``on_retry(exc)`` is called for every failed POST that is retried (credit_retries_total)."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"RISK_API_URL must be an http(s) URL, got {base_url!r}")
        self.url = base_url.rstrip("/") + SCORE_PATH
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.on_retry = on_retry

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout,
                                                  connector=aiohttp.TCPConnector(limit=8))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post_once(self, body: bytes, n: int) -> dict[str, Any]:
        self.requests += 1
        try:
            async with self._get_session().post(self.url, data=body, headers=self._headers) as resp:
                payload = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        if status >= 500 or status in TRANSIENT_STATUS:
            raise _Retry(f"HTTP {status}: {_message(payload)}")
        if status in CONFIG_STATUS:
            raise _Retry(f"HTTP {status}: {_message(payload)} (check RISK_API_URL / RISK_API_TOKEN)", config=True)
        if status != 200:
            raise BatchRejected(f"risk API answered HTTP {status}: {_message(payload)}", status)
        try:
            data = loads(payload)
        except Exception:
            raise BatchRejected("risk API answered 200 with a body that is not JSON", status) from None
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != n or not all(isinstance(r, dict) for r in results):
            raise BatchRejected(f"risk API answered 200 without {n} results", status)
        return data

    async def score(self, applicants: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The API's answer for one batch; waits out transient failures; raises BatchRejected."""
        if not applicants:
            raise ValueError("nothing to score")
        body = dumps({"applicants": list(applicants)})
        n = len(applicants)
        return await retry_forever(lambda: self._post_once(body, n), what=f"risk API POST of {n} applicants",
                                   retry_on=(_Retry,), base=self.retry_base, cap=self.retry_cap, log=logger,
                                   level=_level, on_retry=self.on_retry)

    async def score_split(self, applicants: Sequence[dict[str, Any]]) -> list[tuple[dict | None, str | None]]:
        """Per applicant: (result, None) or (None, the API's refusal); halves a rejected batch down to single ones."""
        try:
            data = await self.score(applicants)
        except BatchRejected as exc:
            if len(applicants) == 1:
                return [(None, exc.reason)]
            logger.warning("risk API rejected a batch of %d (%s); splitting it", len(applicants), exc.reason)
            mid = len(applicants) // 2
            return await self.score_split(applicants[:mid]) + await self.score_split(applicants[mid:])
        top_threshold = data.get("threshold")
        top_version = data.get("model_version")
        out = []
        for result in data["results"]:
            if top_threshold is not None and "threshold" not in result:
                result["threshold"] = top_threshold
            if top_version is not None and not result.get("model_version"):
                result["model_version"] = top_version
            out.append((result, None))
        return out
