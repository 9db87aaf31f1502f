"""Matplotlib pieces every report's figures share: size, colours (from :mod:`.style`), axes, safe labels.

Figures themselves live with their report (``run_report.timeseries_figure``, ``slo_history.latency_figure``,
...); here are the helpers and the two generic figures (:func:`bar`, :func:`run_series`). Each figure
function draws with ``pyplot`` and returns the figure; in a notebook end the call with ``;`` so the inline
backend shows it once (PNG). Text from outside is drawn as text (masked, no mathtext).
matplotlib is imported where a figure is drawn, so importing a report module (``hardening report`` reads
the reports' summaries in its own process) does not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hardening.masking import mask
from hardening.reports.style import BLUE, FAIL_COLOR, OTHER_COLOR, PASS_COLOR

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

WIDTH = 11


def label(text: object) -> str:
    """Masked text for a figure; dollars escaped so matplotlib does not read ``$...$`` as mathtext."""
    return mask(str(text)).replace("$", r"\$")


def time_axis(ax: plt.Axes) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz="UTC"))
    ax.set_xlabel("time (UTC)")


def runs_axis(ax: plt.Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("run (oldest → newest)")


def status_dots(ax: plt.Axes, x: np.ndarray, y: pd.Series, status: pd.Series, size: float,
                max_all: int = 200) -> None:
    """Green/red dots per run; beyond ``max_all`` runs only the failed ones (keeps PNGs small and legible)."""
    colors = status.map({"pass": PASS_COLOR, "fail": FAIL_COLOR}).fillna(OTHER_COLOR).to_numpy()
    keep = np.ones(len(x), bool) if len(x) <= max_all else (status != "pass").to_numpy()
    ax.scatter(x[keep], np.asarray(y)[keep], c=colors[keep], s=size, zorder=3)


def message(text: str, height: float = 1.2) -> plt.Figure:
    """A figure-sized sentence where a chart has no data (keeps the report's layout readable)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH, height))
    ax.axis("off")
    ax.text(0.01, 0.5, label(text), va="center", fontsize=12)
    return fig


def log_if_wide(ax: plt.Axes, values: pd.Series | np.ndarray, unit_ms: bool) -> None:
    """Log y-axis for latencies spanning more than a decade: a 4 → 45 ms step stays visible beside a
    900 ms outlier (on a linear axis both early levels sit flat on zero)."""
    v = pd.to_numeric(pd.Series(np.asarray(values, dtype=float)), errors="coerce").dropna()
    if unit_ms and len(v) and (v > 0).all() and v.max() / v.min() > 10:
        ax.set_yscale("log")


def run_series(runs: pd.DataFrame, columns: Sequence[str], title: str, ylabel: str = "") -> plt.Figure:
    """Several numeric columns across runs (one point per run, oldest first)."""
    import matplotlib.pyplot as plt

    cols = [c for c in columns if c in runs and pd.to_numeric(runs[c], errors="coerce").notna().any()]
    if runs.empty or not cols:
        return message(f"{title}: no data in the selected runs.", 0.8)
    fig, ax = plt.subplots(figsize=(WIDTH, 3))
    x = np.arange(len(runs))
    for col in cols[:8]:
        ax.plot(x, pd.to_numeric(runs[col], errors="coerce"), marker=".", label=label(col))
    ax.set_title(label(title), fontsize=10, loc="left")
    ax.set_ylabel(ylabel)
    runs_axis(ax)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def bar(frame: pd.DataFrame, label_col: str, value_col: str, title: str, xlabel: str) -> plt.Figure:
    """Horizontal bars, largest 15 rows of ``frame`` in its order."""
    import matplotlib.pyplot as plt

    if frame.empty or label_col not in frame or value_col not in frame:
        return message(f"{title}: no data", 0.8)
    part = frame.head(15).iloc[::-1]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.35 * len(part) + 1.2))
    ax.barh([label(v) for v in part[label_col]], part[value_col], color=BLUE)
    ax.set_title(label(title), fontsize=10, loc="left")
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
