"""Statistics for reports: run-vs-baseline judgement, error budgets over runs, change points.

- :func:`hodges_lehmann`, :func:`shift_above_p`, :func:`holm`, :func:`newcombe_interval` and
  :func:`fisher_greater_p` are the building blocks of the run-vs-baseline judge
  (:mod:`hardening.analysis.judge`).
- :func:`compare` judges a metric of a run against its baseline in the spirit of Kayenta's
  Mann-Whitney classifier: a two-sided Mann-Whitney U test, the Hodges–Lehmann shift (median of all
  pairwise differences current − baseline) and its distribution-free confidence interval; the metric
  is ``High`` when the whole interval lies above ``tolerance × |shift|`` (``Low`` symmetric), else
  ``Pass``; ``NoData`` when a side has fewer than ``min_n`` values.
- Error budgets treat each run as a time slice (OpenSLO ``Timeslices``) and count windows in runs:
  budget = 1 − objective; burn rate = bad-run ratio over a window / budget; the multi-window alert
  fires when the short *and* the long window burn at ``factor`` or faster.
- :func:`change_points` finds level shifts across runs: ``ruptures`` proposes breakpoints (binary
  segmentation, l2 cost, penalty ``penalty·log n`` in units of the noise estimated from first
  differences), then a split-merge pass in the spirit of Hunter/Otava keeps only
  breakpoints whose adjacent segments differ by a Welch t-test at ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from hardening.analysis.budget import (  # noqa: F401 - re-exported: stats is the analysts' one import
    BurnAlert,
    ErrorBudget,
    FailureAlert,
    burn_rate,
    burn_rate_series,
    error_budget,
    failure_alert,
    multiwindow_alert,
)

MAX_SIDE = 50_000  # Hodges–Lehmann and the shift test: bigger inputs are thinned to this many quantiles
_BISECT_STEPS = 200


@dataclass
class Comparison:
    metric: str
    classification: str  # High | Low | Pass | NoData
    significant: bool
    n_current: int
    n_baseline: int
    p_value: float | None
    shift: float | None  # Hodges–Lehmann estimate, current − baseline, in the metric's unit
    ci_low: float | None
    ci_high: float | None
    confidence: float
    baseline_median: float | None
    current_median: float | None
    relative_shift: float | None  # shift / |baseline median|

    def to_dict(self) -> dict:
        return asdict(self)


def _subsample(x: np.ndarray, cap: int) -> np.ndarray:
    """``x`` sorted; above ``cap`` values, ``cap`` evenly spaced order statistics (deterministic)."""
    x = np.sort(x)
    if x.size <= cap:
        return x
    return x[np.linspace(0, x.size - 1, cap).round().astype(int)]


def _count_le(xs: np.ndarray, ys: np.ndarray, d: float) -> int:
    """Pairs with ``x − y ≤ d`` (``xs``, ``ys`` sorted): for each x, the y ≥ x − d."""
    return int(xs.size * ys.size - np.searchsorted(ys, xs - d, side="left").sum())


def _smallest_diff_above(xs: np.ndarray, ys: np.ndarray, a: float) -> float:
    """The smallest pairwise difference ``x − y`` greater than ``a``."""
    idx = np.searchsorted(ys, xs - a, side="left") - 1  # the largest y < x − a, per x
    ok = idx >= 0
    return float(np.min(xs[ok] - ys[idx[ok]]))


def kth_difference(xs: np.ndarray, ys: np.ndarray, k: int) -> float:
    """The ``k``-th smallest (1-based) of the ``n·m`` differences ``x − y``, without forming them.

    ``xs`` and ``ys`` must be sorted. Bisection on the value with an O(n log m) count per step, then the
    result snaps to an actual difference, so 10⁵ × 10⁵ samples take well under a second.
    """
    n, m = xs.size, ys.size
    k = min(max(int(k), 1), n * m)
    lo_val, hi_val = float(xs[0] - ys[-1]), float(xs[-1] - ys[0])
    if k == 1:
        return lo_val
    if k == n * m:
        return hi_val
    a, b = lo_val, hi_val  # invariant: count(≤ a) < k ≤ count(≤ b)
    count_a = _count_le(xs, ys, a)
    if count_a >= k:  # the smallest difference occurs at least k times
        return lo_val
    for _ in range(_BISECT_STEPS):
        if count_a == k - 1:  # the k-th is the next difference above a
            break
        mid = a + (b - a) / 2
        if mid in (a, b):
            break
        count_mid = _count_le(xs, ys, mid)
        if count_mid >= k:
            b = mid
        else:
            a, count_a = mid, count_mid
    return _smallest_diff_above(xs, ys, a)


def _prepare(current: Sequence[float], baseline: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    return (_subsample(np.asarray(current, dtype=float), MAX_SIDE),
            _subsample(np.asarray(baseline, dtype=float), MAX_SIDE))


def _z(confidence: float) -> float:
    return float(sps.norm.ppf(1 - (1 - confidence) / 2))


def _ci_index(n: int, m: int, confidence: float) -> int:
    """Hollander & Wolfe: C = nm/2 − z·sqrt(nm(n+m+1)/12), rounded half up, within [1, (nm+1)//2]."""
    nm = n * m
    c = math.floor(nm / 2 - _z(confidence) * math.sqrt(nm * (n + m + 1) / 12) + 0.5)
    return min(max(c, 1), (nm + 1) // 2)


def hodges_lehmann(current: Sequence[float], baseline: Sequence[float],
                   confidence: float = 0.98) -> tuple[float, float, float]:
    """Shift estimate (median of all differences current − baseline) and its distribution-free confidence
    interval (D_(C), D_(nm+1−C)) from the normal approximation of the U distribution.

    Exact for any size up to :data:`MAX_SIDE` values a side (no pairwise matrix is built); beyond that both
    sides are thinned to evenly spaced order statistics.
    """
    xs, ys = _prepare(current, baseline)
    n, m = xs.size, ys.size
    nm = n * m
    if nm % 2:
        shift = kth_difference(xs, ys, (nm + 1) // 2)
    else:
        shift = (kth_difference(xs, ys, nm // 2) + kth_difference(xs, ys, nm // 2 + 1)) / 2
    c = _ci_index(n, m, confidence)
    return float(shift), kth_difference(xs, ys, c), kth_difference(xs, ys, nm + 1 - c)


def shift_above_p(current: Sequence[float], baseline: Sequence[float], margin: float) -> float:
    """One-sided p-value of "the shift current − baseline exceeds ``margin``" (H0: shift ≤ margin).

    The Mann-Whitney U of ``current − margin`` against ``baseline`` (ties counted against the claim), with
    the normal approximation and continuity correction that :func:`hodges_lehmann` inverts: the lower bound
    of the interval at ``confidence`` lies above ``margin`` exactly when this p ≤ (1 − confidence) / 2.
    """
    xs, ys = _prepare(current, baseline)
    n, m = xs.size, ys.size
    nm = n * m
    u_strict = nm - _count_le(xs, ys, margin)  # pairs with x − y > margin
    z = (u_strict - nm / 2 - 0.5) / math.sqrt(nm * (n + m + 1) / 12)
    return float(sps.norm.sf(z))


def mannwhitney_greater_p(current: Sequence[float], baseline: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value of "current tends to be larger than baseline".

    The normal approximation with tie and continuity correction (what ``scipy.stats.mannwhitneyu`` computes
    with ``method="asymptotic"``, its choice for samples above 8), from sorted counts: O((n+m) log m).
    """
    xs, ys = _prepare(current, baseline)
    n, m = xs.size, ys.size
    below = np.searchsorted(ys, xs, side="left").sum()  # pairs with y < x
    tied = np.searchsorted(ys, xs, side="right").sum() - below
    u = below + 0.5 * tied
    big_n = n + m
    _, counts = np.unique(np.concatenate([xs, ys]), return_counts=True)
    ties = float((counts.astype(float) ** 3 - counts).sum())
    var = n * m / 12 * ((big_n + 1) - ties / (big_n * (big_n - 1)))
    if var <= 0:
        return 1.0
    return float(sps.norm.sf((u - n * m / 2 - 0.5) / math.sqrt(var)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down; reject where adjusted ≤ α), in the input order."""
    p = np.asarray(list(pvalues), dtype=float)
    out = np.empty(p.size)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (p.size - rank) * p[i]))
        out[i] = running
    return out.tolist()


def wilson_interval(k: int, n: int, confidence: float = 0.98) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (``(0, 1)`` when n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.98) -> tuple[float, float, float]:
    """Difference p1 − p2 of two proportions with Newcombe's hybrid Wilson interval (method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def fisher_greater_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided Fisher's exact p-value of "proportion 1 is higher than proportion 2" (k of n each)."""
    table = [[k1, n1 - k1], [k2, n2 - k2]]
    return float(sps.fisher_exact(table, alternative="greater").pvalue)


def compare(current: Sequence[float], baseline: Sequence[float], metric: str = "value",
            confidence: float = 0.98, tolerance: float = 0.25, min_n: int = 3) -> Comparison:
    """Judge ``current`` against ``baseline`` (higher = worse for latencies and error rates)."""
    x = np.asarray([v for v in current if v is not None and np.isfinite(v)], dtype=float)
    y = np.asarray([v for v in baseline if v is not None and np.isfinite(v)], dtype=float)
    base = {"metric": metric, "n_current": int(x.size), "n_baseline": int(y.size), "confidence": confidence,
                "baseline_median": float(np.median(y)) if y.size else None,
                "current_median": float(np.median(x)) if x.size else None}
    if x.size < min_n or y.size < min_n:
        return Comparison(classification="NoData", significant=False, p_value=None, shift=None,
                          ci_low=None, ci_high=None, relative_shift=None, **base)
    if np.unique(np.concatenate([x, y])).size == 1:
        return Comparison(classification="Pass", significant=False, p_value=1.0, shift=0.0, ci_low=0.0,
                          ci_high=0.0, relative_shift=0.0, **base)
    p_value = float(sps.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    shift, lo, hi = hodges_lehmann(x, y, confidence)
    bound = tolerance * abs(shift)
    classification = "High" if lo > bound else "Low" if hi < -bound else "Pass"
    bm = base["baseline_median"]
    rel = shift / abs(bm) if bm else None
    return Comparison(classification=classification, significant=bool(lo > 0 or hi < 0), p_value=p_value,
                      shift=shift, ci_low=lo, ci_high=hi, relative_shift=rel, **base)


# ---------------------------------------------------------------- change points


@dataclass
class ChangePoint:
    index: int  # first run of the new segment
    before_median: float  # level of the segment before (medians: one outlier run does not move it)
    after_median: float
    relative_change: float | None  # (after − before) / |before|
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def change_points(values: Sequence[float], min_size: int = 3, alpha: float = 0.001, penalty: float = 4.0,
                  max_points: int = 10, log_scale: bool = True) -> list[ChangePoint]:
    """Level shifts in a series across runs (NaN values are ignored, indices refer to the input)."""
    import ruptures as rpt

    raw = np.asarray(values, dtype=float)
    keep = np.flatnonzero(np.isfinite(raw))
    orig = raw[keep]
    if orig.size < 2 * min_size:
        return []
    # latencies vary multiplicatively (the spread grows with the level): detect and test on the log scale
    y = np.log(orig) if log_scale and np.all(orig > 0) else orig
    # noise level from first differences (insensitive to level shifts), so the penalty is in noise units
    noise = float(np.median(np.abs(np.diff(y) - np.median(np.diff(y))))) / (0.6745 * np.sqrt(2))
    scale = noise or float(np.std(y)) or 1.0
    algo = rpt.Binseg(model="l2", min_size=min_size, jump=1).fit(((y - y.mean()) / scale).reshape(-1, 1))
    bkps = [b for b in algo.predict(pen=penalty * np.log(y.size)) if b < y.size][:max_points]
    # merge: drop the weakest breakpoint while any adjacent pair of segments is not significantly different
    while bkps:
        edges = [0, *bkps, y.size]
        pvals = [_welch_p(y[edges[i]:edges[i + 1]], y[edges[i + 1]:edges[i + 2]]) for i in range(len(bkps))]
        worst = int(np.argmax(pvals))
        if pvals[worst] <= alpha:
            break
        bkps.pop(worst)
    edges = [0, *bkps, y.size]
    out = []
    for i, b in enumerate(bkps):
        bm, am = float(np.median(orig[edges[i]:b])), float(np.median(orig[b:edges[i + 2]]))
        out.append(ChangePoint(index=int(keep[b]), before_median=bm, after_median=am,
                               relative_change=(am - bm) / abs(bm) if bm else None,
                               p_value=_welch_p(y[edges[i]:b], y[b:edges[i + 2]])))
    return out


def _welch_p(a: np.ndarray, b: np.ndarray) -> float:
    if np.all(a == a[0]) and np.all(b == b[0]):
        return 0.0 if a[0] != b[0] else 1.0
    p = sps.ttest_ind(a, b, equal_var=False).pvalue
    return 1.0 if not np.isfinite(p) else float(p)
