"""credit_core.retry: the one backoff (full jitter) and retry_forever."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from credit_core.retry import Backoff, retry_forever


def test_backoff_grows_with_jitter_and_stays_under_the_cap():
    backoff = Backoff(0.1, 2.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(40)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert max(delays[20:]) > max(delays[:3])
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_retry_forever_retries_what_it_is_told_and_nothing_else():
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("down")
        return "ok"
    assert asyncio.run(retry_forever(flaky, what="x", retry_on=(OSError,), base=0.01, cap=0.02)) == "ok"
    assert len(calls) == 3

    async def bug():
        raise KeyError("bug")
    with pytest.raises(KeyError):
        asyncio.run(retry_forever(bug, what="x", retry_on=(OSError,), base=0.01, cap=0.02))


def test_backoff_resets_after_progress_and_refuses_bad_bounds():
    b = Backoff(0.1, 2.0, random.Random(3))
    first = [b.next_delay() for _ in range(12)]
    assert b.attempt == 12 and all(0.05 <= d <= 2.0 for d in first)
    b.reset()
    assert b.attempt == 0 and b.next_delay() <= 0.1
    for base, cap in ((0, 1), (-1, 1), (2, 1)):
        with pytest.raises(ValueError):
            Backoff(base, cap)


def test_retry_forever_gives_up_on_what_no_retry_fixes_and_logs_at_the_chosen_level(caplog):
    calls = []

    async def refused():
        calls.append(1)
        raise ValueError("contract")
    with pytest.raises(ValueError):
        asyncio.run(retry_forever(refused, what="x", give_up=(ValueError,), base=0.01, cap=0.02))
    assert len(calls) == 1

    async def once_down():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("down")
        return 7
    with caplog.at_level(logging.INFO, logger="credit_core.retry"):
        assert asyncio.run(retry_forever(once_down, what="job", base=0.01, cap=0.02,
                                         level=lambda exc: logging.ERROR)) == 7
    assert [r.levelno for r in caplog.records if "retrying" in r.getMessage()] == [logging.ERROR]
    assert "job succeeded after 1 failed attempts" in caplog.text
