"""Numbers as people read them, the same in the console, Markdown, JUnit and HTML.

Rates are percentages with at least two significant digits (``0.012%``, ``1.47%``), milliseconds have two
decimals, p-values are in scientific notation (``1.2e-04``). When an observed value is compared with a
target, :func:`distinct` adds digits until the two no longer print the same, so ``1.004%`` never shows as
``1.00%`` next to a target of ``< 1%``.
"""

from __future__ import annotations

import math

MAX_DECIMALS = 6


def _finite(value: float | None) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def pct_decimals(rate: float) -> int:
    """Decimals for ``rate`` as a percentage: two, more below 0.1% so that two significant digits show."""
    pct = abs(rate) * 100
    if pct == 0 or pct >= 0.1:
        return 2
    return min(MAX_DECIMALS, 1 - math.floor(math.log10(pct)))


def pct(rate: float | None, decimals: int | None = None, sign: bool = False) -> str:
    """``0.0147`` -> ``1.47%``."""
    if not _finite(rate):
        return "n/a"
    d = pct_decimals(rate) if decimals is None else decimals
    return f"{rate * 100:+.{d}f}%" if sign else f"{rate * 100:.{d}f}%"


def pp(diff: float | None, decimals: int | None = None) -> str:
    """A difference of two rates in percentage points: ``0.0147`` -> ``+1.47 pp``."""
    if not _finite(diff):
        return "n/a"
    d = pct_decimals(diff) if decimals is None else decimals
    return f"{diff * 100:+.{d}f} pp"


def ms(value: float | None, sign: bool = False, decimals: int = 2) -> str:
    """Milliseconds with two decimals: ``41.2345`` -> ``41.23 ms``."""
    if not _finite(value):
        return "n/a"
    return f"{value:+.{decimals}f} ms" if sign else f"{value:.{decimals}f} ms"


def num_ms(value: float | None, sign: bool = False) -> str:
    """Like :func:`ms` without the unit (for tables whose header names it)."""
    if not _finite(value):
        return "n/a"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def pvalue(p: float | None) -> str:
    """Scientific notation, two significant digits: ``1.2e-04``; ``n/a`` when untested; a p-value that
    underflowed to 0 is ``< 1.0e-300``, never ``0``."""
    if not _finite(p):
        return "n/a"
    return "< 1.0e-300" if p == 0 else f"{p:.1e}"


def distinct(observed: float, target: float, render) -> tuple[str, str]:
    """``render(value, decimals)`` for both numbers, with more decimals until they differ (or are equal)."""
    a, b = render(observed, None), render(target, None)
    decimals = 3
    while a == b and observed != target and decimals <= MAX_DECIMALS:
        a, b = render(observed, decimals), render(target, decimals)
        decimals += 1
    return a, b


def slo_value(metric_type: str, aggregation: str, value: float | None, decimals: int | None = None) -> str:
    """An SLO's observed value or target with its unit: rates as %, Trend values in ms, counts as integers."""
    if not _finite(value):
        return "no data"
    if metric_type == "rate":
        return pct(value, decimals)
    if metric_type == "trend":
        return f"{value:.{2 if decimals is None else decimals}f} ms"
    if metric_type == "counter" and aggregation == "rate":
        return f"{value:.{2 if decimals is None else decimals}f}/s"
    if float(value).is_integer() and decimals is None:
        return f"{int(value)}"
    return f"{value:.{2 if decimals is None else decimals}f}"


def slo_comparison(metric_type: str, aggregation: str, op: str, observed: float | None, target: float) -> str:
    """``1.47% vs < 1%``: observed, then the target as written, with digits enough to tell them apart."""
    if not _finite(observed):
        return f"no data vs {op} {target_text(metric_type, aggregation, target)}"
    obs, _ = distinct(observed, target, lambda v, d: slo_value(metric_type, aggregation, v, d))
    return f"{obs} vs {op} {target_text(metric_type, aggregation, target)}"


def target_text(metric_type: str, aggregation: str, target: float) -> str:
    """A target as short as it was written: ``1%``, ``800 ms``, ``0.5%``."""
    if metric_type == "rate":
        return f"{target * 100:.10g}%"
    if metric_type == "trend":
        return f"{target:.10g} ms"
    if metric_type == "counter" and aggregation == "rate":
        return f"{target:.10g}/s"
    return f"{target:.10g}"
