"""Trend statistics computed the way k6 computes them (``metrics/sink.go``), bit for bit.

Percentile: sort; ``i = p*(n-1)``; ``v[floor(i)] + (v[ceil(i)] - v[floor(i)]) * (i - floor(i))``;
one sample gives that sample; none gives ``None`` here (k6 says 0, which hides missing data).
k6 turns ``p(N)`` into ``N/100`` (so ``p(99.9)`` is ``0.9990000000000001``, not ``0.999``): pass
``N / 100`` computed the same way to stay bit-exact.
``numpy.percentile`` rounds differently in ~2% of cases, so it is not used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def percentile_sorted(values: Sequence[float], p: float) -> float | None:
    """k6's percentile of already-sorted ``values``; ``p`` in [0, 1]."""
    n = len(values)
    if n == 0:
        return None
    if n == 1:
        return float(values[0])
    i = p * (n - 1)
    lo = math.floor(i)
    hi = math.ceil(i)
    low = float(values[lo])
    return low + (float(values[hi]) - low) * (i - lo)


def percentile(values: Iterable[float], p: float) -> float | None:
    """k6's percentile of unsorted values; ``p`` in [0, 1] (``p(95)`` is ``0.95``)."""
    arr = np.sort(np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float))
    return percentile_sorted(arr, p)


def trend_stats(values: Iterable[float], percents: Sequence[float] = (90, 95, 99)) -> dict:
    """avg/min/med/max and ``p(N)`` keys like k6's summary; empty input gives ``{"count": 0}``."""
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    n = int(arr.size)
    if n == 0:
        return {"count": 0}
    total = 0.0
    for v in arr.tolist():  # running sum in arrival order, as k6 does
        total += v
    ordered = np.sort(arr)
    out = {
        "count": n,
        "avg": total / n,
        "min": float(ordered[0]),
        "med": percentile_sorted(ordered, 0.5),
        "max": float(ordered[-1]),
    }
    for n in percents:
        out[f"p({format_pct(n / 100)})"] = percentile_sorted(ordered, n / 100)
    return out


def format_pct(p: float) -> str:
    """0.95 -> '95', 0.999 -> '99.9' (the spelling k6 uses in summary keys)."""
    s = f"{p * 100:.10f}".rstrip("0").rstrip(".")
    return s
