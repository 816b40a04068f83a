"""Pure arithmetic over scraped samples: counter increases and rates, histogram quantiles, score bins and PSI."""

from __future__ import annotations

import bisect
import logging
import math
from typing import Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

Point = tuple[float, float]            # (time in seconds, value)
Bucket = tuple[float, float]           # (upper bound "le", cumulative count)

PSI_WATCH = 0.10                       # PSI below this: stable
PSI_SHIFT = 0.25                       # PSI above this: shift (between the two: watch)
PSI_FLOOR = 1e-4                       # a zero share counts as this much (ln(0) is undefined)
INF = math.inf


# -- counters -------------------------------------------------------------------------------------------------

def counter_delta(previous: float, current: float) -> float:
    """How much a counter grew between two samples; a drop is a restart, which counts from zero."""
    return current - previous if current >= previous else current


def increase(points: Sequence[Point]) -> float:
    """The growth of a counter over its samples (oldest first), restarts included."""
    return sum(counter_delta(a, b) for (_, a), (_, b) in zip(points, points[1:]))


def edges(now: float, span: float, step: float) -> list[float]:
    """Interval boundaries ending at ``now``: ``span / step`` intervals of ``step`` seconds."""
    if step <= 0 or span < step:
        raise ValueError(f"need 0 < step <= span, got step={step!r}, span={span!r}")
    n = int(round(span / step))
    return [now - (n - i) * step for i in range(n + 1)]


def increases(points: Sequence[Point], bounds: Sequence[float]) -> list[float]:
    """A counter's growth in each interval (bounds[i], bounds[i+1]]: each step between two consecutive samples
    counts in the interval that holds the later sample; steps ending outside the bounds are left out."""
    out = [0.0] * max(len(bounds) - 1, 0)
    if not out:
        return out
    lo, hi = bounds[0], bounds[-1]
    for (_, a), (t, b) in zip(points, points[1:]):
        if lo < t <= hi:
            out[bisect.bisect_left(bounds, t) - 1] += counter_delta(a, b)
    return out


def rates(points: Sequence[Point], bounds: Sequence[float]) -> list[float]:
    """Per-second rates of a counter in each interval of ``bounds``."""
    return [inc / (b - a) for inc, a, b in zip(increases(points, bounds), bounds, bounds[1:])]


def value_at(points: Sequence[Point], t: float) -> float | None:
    """A gauge's value at ``t``: its last sample at or before ``t``; None before the first."""
    i = bisect.bisect_right([p[0] for p in points], t)
    return points[i - 1][1] if i else None


def add_series(series: Iterable[Sequence[float | None]]) -> list[float | None]:
    """Element-wise sums of equally long series; a position where every series is None stays None."""
    out: list[float | None] = []
    for column in zip(*series):
        present = [v for v in column if v is not None]
        out.append(sum(present) if present else None)
    return out


# -- histograms -----------------------------------------------------------------------------------------------

def parse_le(text: str) -> float:
    """A bucket bound as prometheus-client writes it ("0.1", "+Inf")."""
    return INF if text in ("+Inf", "Inf", "inf") else float(text)


def normalise(buckets: Iterable[Bucket]) -> list[Bucket]:
    """Buckets merged by bound (counts added), sorted, and made non-decreasing."""
    merged: dict[float, float] = {}
    for le, count in buckets:
        merged[le] = merged.get(le, 0.0) + count
    out, running = [], 0.0
    for le in sorted(merged):
        running = max(running, merged[le])
        out.append((le, running))
    return out


def bucket_increase(old: Sequence[Bucket], new: Sequence[Bucket]) -> list[Bucket]:
    """The observations between two readings of one histogram; a smaller total count is a restart."""
    old_d = dict(old)
    if not new:
        return []
    if not old or new[-1][1] < old[-1][1]:
        return list(new)
    return [(le, max(count - old_d.get(le, 0.0), 0.0)) for le, count in new]


def quantile(q: float, buckets: Sequence[Bucket]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets (sorted, +Inf last): linear within a bucket, the
    lowest bucket starting at 0, and the highest finite bound when the rank falls in +Inf. None: no data."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in 0..1, got {q!r}")
    buckets = normalise(buckets)
    if not buckets or buckets[-1][0] != INF:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    i = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    le, count = buckets[i]
    if le == INF:
        return buckets[-2][0] if len(buckets) > 1 else None
    lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
    if i == 0 and le <= 0:
        return le
    if count == below:
        return le
    return lower + (le - lower) * (rank - below) / (count - below)


def bin_counts(buckets: Sequence[Bucket]) -> list[tuple[float, float]]:
    """(upper bound, count in that bin) of each finite bucket: the cumulative counts differenced."""
    out, previous = [], 0.0
    for le, count in normalise(buckets):
        if le == INF:
            break
        out.append((le, count - previous))
        previous = count
    return out


# -- population stability -------------------------------------------------------------------------------------

def shares(counts: Sequence[float]) -> list[float] | None:
    """Counts as shares of their total; None when the total is not positive."""
    total = sum(counts)
    return [c / total for c in counts] if total > 0 else None


def psi(actual: Sequence[float], expected: Sequence[float], floor: float = PSI_FLOOR) -> float | None:
    """Population stability index of ``actual`` against ``expected`` (counts or shares, bin by bin):
    sum((a - e) * ln(a / e)) over the shares, a zero share counting as ``floor``. None without data."""
    if len(actual) != len(expected):
        raise ValueError(f"need as many bins on both sides, got {len(actual)} and {len(expected)}")
    a_shares, e_shares = shares(actual), shares(expected)
    if a_shares is None or e_shares is None:
        return None
    total = 0.0
    for a, e in zip(a_shares, e_shares):
        a, e = max(a, floor), max(e, floor)
        total += (a - e) * math.log(a / e)
    return total


def psi_band(value: float | None) -> str | None:
    """stable (< 0.10), watch (0.10 to 0.25) or shift (> 0.25); None without a value."""
    if value is None:
        return None
    if value < PSI_WATCH:
        return "stable"
    return "watch" if value <= PSI_SHIFT else "shift"


def align_bins(live: Sequence[tuple[float, float]], reference: Mapping[float, float]) -> tuple[
        list[float], list[float], list[float]]:
    """(bounds, live counts, reference shares) over the reference's bins, matched by bound (to 1e-9)."""
    by_bound = {round(le, 9): count for le, count in live}
    bounds = sorted(reference)
    return bounds, [by_bound.get(round(b, 9), 0.0) for b in bounds], [reference[b] for b in bounds]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator
