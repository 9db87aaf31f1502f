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

WIDTH = 7.5  # inches at 100 dpi: 750 px, shown at full size on a desktop and scaled to a phone's width
RC = {"font.size": 12, "axes.titlesize": 12, "axes.labelsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11,
      "legend.fontsize": 10, "lines.linewidth": 1.6}
MARKERS_BELOW = 60  # series with fewer points get markers: a one-second scenario is a visible dot, not nothing
MAX_RUN_TICKS = 5
RUN_TICK_FORMAT = "%Y-%m-%d\n%H:%M"  # a run's start time (UTC) under its position


def label(text: object) -> str:
    """Masked text for a figure; dollars escaped so matplotlib does not read ``$...$`` as mathtext."""
    return mask(str(text)).replace("$", r"\$")


def subplots(*args: object, **kw: object) -> tuple[plt.Figure, object]:
    """``plt.subplots`` with the reports' type sizes (legible when a figure is scaled to a phone's width)."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    mpl.rcParams.update(RC)
    return plt.subplots(*args, **kw)


def line(ax: plt.Axes, x: object, y: object, *fmt: str, **kw: object) -> list:
    """``ax.plot`` with markers when the series is short, so a single point (a one-second scenario) is drawn."""
    n = int(pd.Series(np.asarray(y, dtype=float)).notna().sum())
    if n < MARKERS_BELOW and "marker" not in kw and not any(c in "".join(fmt) for c in ".ox^sv*+"):
        kw["marker"] = "o"
        kw.setdefault("markersize", 4 if n > 1 else 6)
    return ax.plot(x, y, *fmt, **kw)


def time_axis(ax: plt.Axes) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz="UTC"))
    ax.set_xlabel("time (UTC)")


def run_tick_positions(n: int, max_ticks: int = MAX_RUN_TICKS) -> list[int]:
    """Whole run positions to label: all of them when few, else evenly spread with the first and the last."""
    if n <= max_ticks:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_ticks - 1)) for i in range(max_ticks)})


def run_start_labels(started: Sequence[object] | pd.Series) -> list[str]:
    """Each run's start time as a tick label (``2026-11-01\n08:00``, UTC); ``?`` when unknown."""
    times = pd.to_datetime(pd.Series(list(started), dtype=object), utc=True, errors="coerce", format="ISO8601")
    return ["?" if pd.isna(t) else t.strftime(RUN_TICK_FORMAT) for t in times]


def runs_axis(ax: plt.Axes, started: Sequence[object] | pd.Series, note: str = "") -> list[str]:
    """X axis of a chart across runs (one position per run, oldest first) labelled with the runs' start
    times; returns the tick labels (the report's side file keeps them)."""
    labels = run_start_labels(started)
    ticks = run_tick_positions(len(labels))
    ax.set_xticks(ticks, [labels[i] for i in ticks])
    if labels:
        ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_xlabel("run start (UTC), one step per run" + (f"; {note}" if note else ""))
    return [labels[i] for i in ticks]


def tick_labels(fig: plt.Figure) -> list[str]:
    """The x tick labels of a figure's bottom axes (as drawn)."""
    axes = [ax for ax in fig.axes if ax.get_xticklabels()]
    return [t.get_text() for t in axes[-1].get_xticklabels()] if axes else []


def status_dots(ax: plt.Axes, x: np.ndarray, y: pd.Series, status: pd.Series, size: float,
                max_all: int = 200) -> None:
    """Green/red dots per run; beyond ``max_all`` runs only the failed ones (keeps PNGs small and legible)."""
    colors = status.map({"pass": PASS_COLOR, "fail": FAIL_COLOR}).fillna(OTHER_COLOR).to_numpy()
    keep = np.ones(len(x), bool) if len(x) <= max_all else (status != "pass").to_numpy()
    ax.scatter(x[keep], np.asarray(y)[keep], c=colors[keep], s=size, zorder=3)


def message(text: str, height: float = 1.2) -> plt.Figure:
    """A figure-sized sentence where a chart has no data (keeps the report's layout readable)."""
    fig, ax = subplots(figsize=(WIDTH, height))
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
    """Several numeric columns across runs (one point per run, oldest first; x labelled with ``started_at``)."""
    cols = [c for c in columns if c in runs and pd.to_numeric(runs[c], errors="coerce").notna().any()]
    if runs.empty or not cols:
        return message(f"{title}: no data in the selected runs.", 0.8)
    fig, ax = subplots(figsize=(WIDTH, 3.2))
    x = np.arange(len(runs))
    for col in cols[:8]:
        ax.plot(x, pd.to_numeric(runs[col], errors="coerce"), marker=".", label=label(col))
    ax.set_title(label(title), loc="left")
    ax.set_ylabel(ylabel)
    runs_axis(ax, runs["started_at"] if "started_at" in runs else [None] * len(runs))
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def bar(frame: pd.DataFrame, label_col: str, value_col: str, title: str, xlabel: str) -> plt.Figure:
    """Horizontal bars, largest 15 rows of ``frame`` in its order."""
    if frame.empty or label_col not in frame or value_col not in frame:
        return message(f"{title}: no data", 0.8)
    part = frame.head(15).iloc[::-1]
    fig, ax = subplots(figsize=(WIDTH, 0.4 * len(part) + 1.4))
    ax.barh([label(v) for v in part[label_col]], part[value_col], color=BLUE)
    ax.set_title(label(title), loc="left")
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
