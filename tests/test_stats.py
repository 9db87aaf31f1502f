"""hardening.analysis.stats: Kayenta-style comparison, error budgets over runs, change points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from hardening.analysis import stats


def rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_compare_detects_a_shift_and_estimates_it():
    r = rng()
    base = r.normal(100, 10, 80)
    cur = r.normal(123, 10, 80)
    c = stats.compare(cur, base, "p95")
    assert c.classification == "High" and c.significant
    assert c.ci_low < c.shift < c.ci_high
    assert c.ci_low > 15 and c.ci_high < 31  # the true shift is 23
    assert c.relative_shift == pytest.approx(c.shift / np.median(base))
    assert c.p_value == pytest.approx(sps.mannwhitneyu(cur, base, alternative="two-sided").pvalue)
    low = stats.compare(base, cur)
    assert low.classification == "Low" and low.shift == pytest.approx(-c.shift)


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    x = np.array([3.0, 7.0, 8.0, 12.0])
    y = np.array([1.0, 2.0, 6.0])
    shift, lo, hi = stats.hodges_lehmann(x, y, 0.8)
    assert shift == pytest.approx(np.median(np.subtract.outer(x, y)))
    assert lo <= shift <= hi
    exact = stats.hodges_lehmann(y + 5.0, y, 0.98)
    assert exact[0] == 5.0


def test_interval_narrows_with_more_data():
    r = rng(3)
    small = stats.compare(r.normal(110, 10, 10), r.normal(100, 10, 10))
    big = stats.compare(r.normal(110, 10, 400), r.normal(100, 10, 400))
    assert (big.ci_high - big.ci_low) < (small.ci_high - small.ci_low) / 3


def test_same_distribution_passes_and_no_data():
    r = rng(11)
    c = stats.compare(r.normal(100, 10, 60), r.normal(100, 10, 60))
    assert c.classification == "Pass" and not c.significant
    assert stats.compare([1.0, 2.0], [1.0, 2.0, 3.0]).classification == "NoData"
    flat = stats.compare([5.0] * 10, [5.0] * 10)
    assert flat.classification == "Pass" and flat.shift == 0.0
    nan = stats.compare([1.0, float("nan"), 2.0, 3.0], [1.0, 2.0, 3.0])
    assert nan.n_current == 3


def test_tolerance_keeps_small_significant_shifts_as_pass():
    r = rng(5)
    base = r.normal(100, 1, 500)
    cur = base + 0.4 + r.normal(0, 0.05, 500)  # tiny but very significant
    strict = stats.compare(cur, base, tolerance=0.0)
    lax = stats.compare(cur, base, tolerance=5.0)
    assert strict.significant and strict.classification == "High"
    assert lax.significant and lax.classification == "Pass"


GOOD = [True] * 15 + [False, True, False, False, True]  # 20 runs, 3 bad, 3 of them in the last 5


def test_error_budget_numbers():
    eb = stats.error_budget(GOOD, objective=0.9)
    assert (eb.window, eb.good, eb.bad) == (20, 17, 3)
    assert eb.budget_runs == pytest.approx(2.0)
    assert eb.consumed == pytest.approx(1.5)
    assert eb.remaining == pytest.approx(-0.5)
    assert eb.compliance == pytest.approx(0.85)
    last10 = stats.error_budget(GOOD, objective=0.8, window=10)
    assert (last10.window, last10.bad) == (10, 3)
    assert last10.remaining == pytest.approx(1 - 3 / 2)


def test_burn_rates_and_multiwindow_alert():
    assert stats.burn_rate(GOOD, 5, 0.9) == pytest.approx(6.0)
    assert stats.burn_rate(GOOD, 20, 0.9) == pytest.approx(1.5)
    quiet = stats.multiwindow_alert(GOOD, 0.9, short=5, long=20, factor=2.0)
    assert not quiet.firing  # short burns fast, long does not: a blip
    firing = stats.multiwindow_alert(GOOD, 0.9, short=5, long=10, factor=2.0)
    assert firing.firing and firing.long_burn == pytest.approx(3.0)
    series = stats.burn_rate_series(GOOD, 5, 0.9)
    for i in range(len(GOOD)):
        assert series[i] == pytest.approx(stats.burn_rate(GOOD[: i + 1], 5, 0.9))
    with pytest.raises(ValueError):
        stats.error_budget(GOOD, objective=1.0)


def test_failure_alert_sentence():
    a = stats.failure_alert(GOOD, last=10)
    assert a.firing and a.text == "alert: SLO failed in 3 of the last 10 runs"
    ok = stats.failure_alert([True] * 12, last=10)
    assert not ok.firing and ok.text == "ok: SLO failed in 0 of the last 10 runs"
    short = stats.failure_alert([False, True], last=10)
    assert short.runs == 2 and short.failed == 1


def test_change_point_found_where_the_level_moves():
    r = rng(2)
    y = np.r_[r.normal(120, 6, 18), r.normal(300, 15, 12)]
    cps = stats.change_points(y)
    assert [c.index for c in cps] == [18]
    assert cps[0].relative_change == pytest.approx(1.5, rel=0.15)
    assert cps[0].p_value < 0.01


def test_no_change_point_in_noise_and_nan_indices_map_back():
    r = rng(4)
    assert stats.change_points(r.normal(100, 5, 40)) == []
    assert stats.change_points([1.0, 2.0, 3.0]) == []
    y = np.r_[r.normal(100, 3, 10), [np.nan], r.normal(200, 3, 10)]
    cps = stats.change_points(y)
    assert [c.index for c in cps] == [11]


def test_two_steps():
    r = rng(9)
    y = np.r_[r.normal(100, 4, 15), r.normal(160, 4, 15), r.normal(100, 4, 15)]
    assert [c.index for c in stats.change_points(y)] == [15, 30]
