"""Retry forever with exponential backoff and full jitter, logging each failure: the stream waits, nothing is dropped."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Awaitable, Callable, Iterator, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BASE = 0.2   # seconds; settings.RETRY_BASE
DEFAULT_CAP = 10.0   # seconds; settings.RETRY_CAP


def backoff_delays(base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP,
                   rng: random.Random | None = None) -> Iterator[float]:
    """Endless delays: uniform(0, min(cap, base * 2**n)) ("full jitter"), never below base / 2."""
    if not base > 0 or not cap >= base:
        raise ValueError(f"need 0 < base <= cap, got base={base!r} cap={cap!r}")
    rnd = rng or random.Random()
    attempt = 0
    while True:
        ceiling = min(cap, base * (2 ** min(attempt, 30)))
        yield max(base / 2, rnd.uniform(0, ceiling))
        attempt += 1


async def retry_forever(fn: Callable[[], Awaitable[T]], *, what: str,
                        retry_on: tuple[type[BaseException], ...] = (Exception,),
                        base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP,
                        log: logging.Logger = logger) -> T:
    """Await ``fn()`` until it succeeds; exceptions in ``retry_on`` are logged and retried after a backoff."""
    delays = backoff_delays(base, cap)
    failures = 0
    while True:
        try:
            result = await fn()
        except asyncio.CancelledError:
            raise
        except retry_on as exc:
            failures += 1
            delay = next(delays)
            log.warning("%s failed (attempt %d): %s; retrying in %.2fs", what, failures, exc or type(exc).__name__,
                        delay)
            await asyncio.sleep(delay)
            continue
        if failures:
            log.info("%s succeeded after %d failed attempts", what, failures)
        return result
