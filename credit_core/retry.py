"""Backoff for everything that waits out a failure: exponential, capped, full jitter; and ``retry_forever``.

One schedule for the whole project (the topology's sends, HBase writes and
risk API calls, and the producer's waits for the applicant API and the
broker): the n-th delay (from 0) is ``uniform(0, min(cap, base * 2**n))``,
never below ``base / 2``.  The stream waits, nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Awaitable, Callable, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BASE = 0.2   # seconds; the topology's RETRY_BASE
DEFAULT_CAP = 10.0   # seconds; the topology's RETRY_CAP


class Backoff:
    """Delays growing from ``base`` up to ``cap`` with full jitter; ``reset()`` after progress starts over."""

    __slots__ = ("base", "cap", "attempt", "_rng")

    def __init__(self, base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP, rng: random.Random | None = None):
        if not base > 0 or not cap >= base:
            raise ValueError(f"need 0 < base <= cap, got base={base!r} cap={cap!r}")
        self.base = base
        self.cap = cap
        self.attempt = 0          # delays handed out since the last reset
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return max(self.base / 2, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def retry_forever(fn: Callable[[], Awaitable[T]], *, what: str,
                        retry_on: tuple[type[BaseException], ...] = (Exception,),
                        give_up: tuple[type[BaseException], ...] = (),
                        base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP,
                        log: logging.Logger = logger,
                        describe: Callable[[BaseException], str] = _describe,
                        level: Callable[[BaseException], int] | None = None,
                        on_retry: Callable[[BaseException], None] | None = None) -> T:
    """Await ``fn()`` until it succeeds; exceptions in ``retry_on`` are logged and retried after a backoff.

    ``give_up`` exceptions propagate even when ``retry_on`` covers them (a
    failure no retry can fix); so does cancellation.  ``level(exc)`` picks
    the log level of a failure (WARNING by default); ``on_retry(exc)`` is
    called for each failure that will be retried (a metric's count).
    """
    backoff = None
    while True:
        try:
            result = await fn()
        except asyncio.CancelledError:
            raise
        except give_up:
            raise
        except retry_on as exc:
            if backoff is None:
                backoff = Backoff(base, cap)
            delay = backoff.next_delay()
            if on_retry is not None:
                on_retry(exc)
            log.log(logging.WARNING if level is None else level(exc),
                    "%s failed (attempt %d): %s; retrying in %.2fs", what, backoff.attempt, describe(exc), delay)
            await asyncio.sleep(delay)
            continue
        if backoff is not None:
            log.info("%s succeeded after %d failed attempts", what, backoff.attempt)
        return result
