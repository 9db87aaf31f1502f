"""Trend statistics computed the way k6 computes them (``metrics/sink.go``), bit for bit.

Percentile: sort; ``i = p*(n-1)``; ``v[floor(i)] + (v[ceil(i)] - v[floor(i)]) * (i - floor(i))``;
one sample gives that sample; none gives ``None`` here (k6 says 0, which hides missing data).
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


def trend_stats(values: Iterable[float], percentiles: Sequence[float] = (0.90, 0.95, 0.99)) -> dict:
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
    for p in percentiles:
        out[f"p({format_pct(p)})"] = percentile_sorted(ordered, p)
    return out


def format_pct(p: float) -> str:
    """0.95 -> '95', 0.999 -> '99.9' (the spelling k6 uses in summary keys)."""
    s = f"{p * 100:.10f}".rstrip("0").rstrip(".")
    return s
