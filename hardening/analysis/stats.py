"""Statistics for reports: run-vs-baseline judgement, error budgets over runs, change points.

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

MAX_PAIRS_SIDE = 2000  # Hodges–Lehmann uses all pairs: cap each side (deterministic subsample) for big inputs


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
    if x.size <= cap:
        return x
    return np.sort(x)[np.linspace(0, x.size - 1, cap).round().astype(int)]


def hodges_lehmann(current: Sequence[float], baseline: Sequence[float],
                   confidence: float = 0.98) -> tuple[float, float, float]:
    """Shift estimate and confidence interval (normal approximation of the U distribution)."""
    x = _subsample(np.asarray(current, dtype=float), MAX_PAIRS_SIDE)
    y = _subsample(np.asarray(baseline, dtype=float), MAX_PAIRS_SIDE)
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    n, m = x.size, y.size
    nm = n * m
    z = sps.norm.ppf(1 - (1 - confidence) / 2)
    # Hollander & Wolfe: C = nm/2 − z·sqrt(nm(n+m+1)/12); CI = (D_(C), D_(nm+1−C)), 1-based order statistics
    c = round(nm / 2 - z * math.sqrt(nm * (n + m + 1) / 12))
    c = min(max(c, 1), (nm + 1) // 2)
    return float(np.median(diffs)), float(diffs[c - 1]), float(diffs[nm - c])


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


# ---------------------------------------------------------------- error budget over runs


@dataclass
class ErrorBudget:
    objective: float  # target share of good runs, e.g. 0.9
    window: int  # runs in the compliance window
    good: int
    bad: int
    compliance: float | None  # good / window
    budget_runs: float  # bad runs the budget allows in this window
    consumed: float | None  # bad / budget_runs (1.0 = exhausted)
    remaining: float | None  # 1 − consumed (negative = overspent)
    burn_rate: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _last(good: Sequence[bool], window: int | None) -> np.ndarray:
    arr = np.asarray(list(good), dtype=bool)
    return arr if window is None else arr[-window:]


def burn_rate(good: Sequence[bool], window: int, objective: float) -> float | None:
    """Bad-run ratio over the last ``window`` runs divided by the error budget (1 − objective)."""
    _check_objective(objective)
    last = _last(good, window)
    if last.size == 0:
        return None
    return float((~last).mean() / (1 - objective))


def burn_rate_series(good: Sequence[bool], window: int, objective: float) -> np.ndarray:
    """Burn rate after each run over the trailing ``window`` runs (shorter at the start)."""
    _check_objective(objective)
    bad = (~np.asarray(list(good), dtype=bool)).astype(float)
    csum = np.concatenate([[0.0], np.cumsum(bad)])
    idx = np.arange(1, bad.size + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start) / (1 - objective)


def error_budget(good: Sequence[bool], objective: float = 0.9, window: int | None = None) -> ErrorBudget:
    """Error budget over the last ``window`` runs (all runs when None)."""
    _check_objective(objective)
    last = _last(good, window)
    n = int(last.size)
    bad = int((~last).sum())
    allowed = (1 - objective) * n
    consumed = bad / allowed if allowed else None
    return ErrorBudget(objective=objective, window=n, good=n - bad, bad=bad,
                       compliance=(n - bad) / n if n else None, budget_runs=allowed, consumed=consumed,
                       remaining=None if consumed is None else 1 - consumed,
                       burn_rate=burn_rate(last, n, objective) if n else None)


@dataclass
class BurnAlert:
    short_window: int
    long_window: int
    factor: float
    short_burn: float | None
    long_burn: float | None
    firing: bool

    def to_dict(self) -> dict:
        return asdict(self)


def multiwindow_alert(good: Sequence[bool], objective: float = 0.9, short: int = 5, long: int = 20,
                      factor: float = 2.0) -> BurnAlert:
    """Fires when both the short and the long window burn the budget ``factor`` times too fast."""
    s = burn_rate(good, short, objective)
    lg = burn_rate(good, long, objective)
    firing = s is not None and lg is not None and s >= factor and lg >= factor
    return BurnAlert(short, long, factor, s, lg, bool(firing))


@dataclass
class FailureAlert:
    failed: int
    runs: int
    text: str
    firing: bool

    def to_dict(self) -> dict:
        return asdict(self)


def failure_alert(good: Sequence[bool], last: int = 10, threshold: int = 1, what: str = "SLO") -> FailureAlert:
    """"alert: SLO failed in N of the last M runs" (firing when N ≥ ``threshold``)."""
    arr = _last(good, last)
    failed = int((~arr).sum())
    firing = failed >= threshold and arr.size > 0
    prefix = "alert" if firing else "ok"
    return FailureAlert(failed, int(arr.size), f"{prefix}: {what} failed in {failed} of the last {arr.size} runs",
                        bool(firing))


def _check_objective(objective: float) -> None:
    if not 0 < objective < 1:
        raise ValueError(f"objective must be between 0 and 1 (exclusive), got {objective}")


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
