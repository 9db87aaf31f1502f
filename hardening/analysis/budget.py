"""Error budgets over runs (each run one time slice, OpenSLO ``Timeslices``; windows counted in runs).

budget = 1 − objective; burn rate = bad-run ratio over a window / budget; the multi-window alert fires when
the short *and* the long window burn at ``factor`` or faster. numpy only, so reports can import the result
types without loading scipy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


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


