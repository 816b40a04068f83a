"""The dashboard's arithmetic with known numbers: counter increases and rates, quantiles from buckets, PSI."""

from __future__ import annotations

import math

import pytest

from dashboard import figures
from dashboard.figures import INF


def test_a_counter_increase_counts_a_restart_from_zero():
    assert figures.increase([(0, 5), (1, 8), (2, 8), (3, 20)]) == 15
    # the process restarted between t=1 and t=2: it counted 3 since then
    assert figures.increase([(0, 5), (1, 8), (2, 3), (3, 10)]) == 3 + 3 + 7
    assert figures.increase([(0, 5)]) == 0


def test_increases_fall_in_the_interval_of_the_later_sample():
    points = [(0.5, 0), (1.5, 10), (2.5, 30), (3.0, 30), (3.5, 31), (9.0, 100)]
    bounds = [1.0, 2.0, 3.0, 4.0]
    # (1,2]: 0->10 ; (2,3]: 10->30 and 30->30 ; (3,4]: 30->31 ; t=9 is outside
    assert figures.increases(points, bounds) == [10, 20, 1]
    assert figures.rates(points, [1.0, 3.0]) == [15.0]
    assert figures.increases(points, [100.0]) == []


def test_edges_end_now_and_step_back():
    assert figures.edges(100.0, 30.0, 10.0) == [70.0, 80.0, 90.0, 100.0]
    with pytest.raises(ValueError):
        figures.edges(100.0, 5.0, 10.0)


def test_a_gauge_holds_its_last_value():
    points = [(1.0, 4.0), (3.0, 7.0)]
    assert figures.value_at(points, 0.5) is None
    assert figures.value_at(points, 1.0) == 4.0
    assert figures.value_at(points, 2.9) == 4.0
    assert figures.value_at(points, 10) == 7.0


def test_series_add_up_and_all_missing_stays_missing():
    assert figures.add_series([[1, None, None], [2, 3, None]]) == [3, 3, None]


BUCKETS = [(0.1, 10), (0.5, 30), (1.0, 40), (INF, 40)]


@pytest.mark.parametrize("q, expected", [
    (0.25, 0.1),            # rank 10: the top of the first bucket
    (0.5, 0.3),             # rank 20: half way through (0.1, 0.5]
    (0.125, 0.05),          # rank 5: half way through (0, 0.1]
    (1.0, 1.0),             # rank 40: the top of (0.5, 1.0]
    (0.875, 0.75),          # rank 35: half way through (0.5, 1.0]
])
def test_quantiles_interpolate_within_a_bucket_like_prometheus(q, expected):
    assert figures.quantile(q, BUCKETS) == pytest.approx(expected)


def test_a_quantile_in_the_inf_bucket_is_the_highest_finite_bound():
    assert figures.quantile(0.99, [(0.1, 1), (1.0, 2), (INF, 10)]) == 1.0


def test_quantile_without_data_is_none_and_buckets_are_merged_and_sorted():
    assert figures.quantile(0.5, []) is None
    assert figures.quantile(0.5, [(0.1, 0), (INF, 0)]) is None
    assert figures.quantile(0.5, [(1.0, 5)]) is None               # no +Inf bucket: not a histogram
    # two workers' buckets in any order merge by bound
    merged = [(INF, 20), (0.5, 15), (0.1, 5), (INF, 20), (0.5, 15), (0.1, 5)]
    assert figures.normalise(merged) == [(0.1, 10), (0.5, 30), (INF, 40)]
    assert figures.quantile(0.5, merged) == pytest.approx(0.1 + 0.4 * 10 / 20)
    with pytest.raises(ValueError):
        figures.quantile(1.5, BUCKETS)


def test_bucket_increase_and_restart():
    old = [(0.1, 5), (1.0, 10), (INF, 12)]
    new = [(0.1, 7), (1.0, 15), (INF, 20)]
    assert figures.bucket_increase(old, new) == [(0.1, 2), (1.0, 5), (INF, 8)]
    restarted = [(0.1, 1), (1.0, 1), (INF, 2)]
    assert figures.bucket_increase(old, restarted) == restarted
    assert figures.bucket_increase([], new) == new


def test_bin_counts_difference_the_cumulative_buckets():
    assert figures.bin_counts([(0.1, 3), (0.2, 3), (0.3, 10), (INF, 10)]) == [(0.1, 3), (0.2, 0), (0.3, 7)]


def test_psi_with_known_numbers():
    # (0.2-0.3) ln(0.2/0.3) + 0 + (0.5-0.4) ln(0.5/0.4)
    expected = -0.1 * math.log(2 / 3) + 0.1 * math.log(1.25)
    assert figures.psi([0.2, 0.3, 0.5], [0.3, 0.3, 0.4]) == pytest.approx(expected)
    assert figures.psi([0.2, 0.3, 0.5], [0.3, 0.3, 0.4]) == pytest.approx(0.0628609, abs=1e-7)
    # counts are shares once divided by their total
    assert figures.psi([20, 30, 50], [3, 3, 4]) == pytest.approx(expected)
    assert figures.psi([1, 2, 3], [1, 2, 3]) == 0.0


def test_psi_floors_an_empty_bin():
    # actual share 0 in the first bin counts as 1e-4
    a, e = 1e-4, 0.5
    expected = (a - e) * math.log(a / e) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert figures.psi([0, 10], [5, 5]) == pytest.approx(expected)
    assert figures.psi([0, 0], [5, 5]) is None
    with pytest.raises(ValueError):
        figures.psi([1, 2], [1, 2, 3])


@pytest.mark.parametrize("value, band", [(None, None), (0.0, "stable"), (0.0999, "stable"), (0.10, "watch"),
                                         (0.25, "watch"), (0.2501, "shift"), (3.0, "shift")])
def test_psi_bands(value, band):
    assert figures.psi_band(value) == band


def test_bins_align_with_the_reference_by_bound():
    live = [(0.1, 2.0), (0.30000000000000004, 5.0)]
    reference = {0.1: 0.5, 0.2: 0.25, 0.3: 0.25}
    assert figures.align_bins(live, reference) == ([0.1, 0.2, 0.3], [2.0, 0.0, 5.0], [0.5, 0.25, 0.25])


def test_ratio():
    assert figures.ratio(1, 4) == 0.25
    assert figures.ratio(None, 4) is None and figures.ratio(1, 0) is None
