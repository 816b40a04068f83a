"""Wall-clock time as the pipeline records it: epoch milliseconds (ints)."""

from __future__ import annotations

import time

MAX_TIME_MS = 10**13 - 1   # 13 digits: good until the year 2286 (HBase index keys hold 13 digits)


def now_ms() -> int:
    """Now, in epoch milliseconds."""
    return time.time_ns() // 1_000_000
