"""Matplotlib figures for the report notebooks (PNG through ``%matplotlib inline``).

Each function draws one figure with ``pyplot`` and returns it; in a notebook end the call with ``;``
so the inline backend shows it once. Sizes fit a laptop screen; text from outside is drawn as text.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from hardening.masking import mask

WIDTH = 11
PASS_COLOR, FAIL_COLOR, OTHER_COLOR = "#1a7f37", "#cf222e", "#9a6700"


def _label(text: object) -> str:
    # matplotlib would treat $...$ as mathtext: escape dollars so outside strings show as written
    return mask(str(text)).replace("$", r"\$")


def _time_axis(ax: plt.Axes) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz="UTC"))
    ax.set_xlabel("time (UTC)")


def _runs_axis(ax: plt.Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("run (oldest → newest)")


def _status_dots(ax: plt.Axes, x: np.ndarray, y: pd.Series, status: pd.Series, size: float,
                 max_all: int = 200) -> None:
    """Green/red dots per run; beyond ``max_all`` runs only the failed ones (keeps PNGs small and legible)."""
    colors = status.map({"pass": PASS_COLOR, "fail": FAIL_COLOR}).fillna(OTHER_COLOR).to_numpy()
    keep = np.ones(len(x), bool) if len(x) <= max_all else (status != "pass").to_numpy()
    ax.scatter(x[keep], np.asarray(y)[keep], c=colors[keep], s=size, zorder=3)


def _message(text: str, height: float = 1.2) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(WIDTH, height))
    ax.axis("off")
    ax.text(0.01, 0.5, _label(text), va="center", fontsize=12)
    return fig


def run_timeseries(per_second: pd.DataFrame, title: str = "") -> plt.Figure:
    """Requests/s, error rate, p50/p95/p99 and VUs per second on one shared time axis."""
    rows = per_second[per_second["scenario"] == "all"] if "scenario" in per_second else per_second
    if rows.empty:
        return _message("No per-second data in this run record.")
    t = pd.to_datetime(rows["second"], utc=True)
    fig, axes = plt.subplots(4, 1, figsize=(WIDTH, 8.5), sharex=True, height_ratios=[1, 0.8, 1.3, 0.8])
    axes[0].plot(t, rows["rps"], color="#0969da")
    axes[0].set_ylabel("requests/s")
    axes[1].plot(t, rows["error_rate"].fillna(0) * 100, color=FAIL_COLOR)
    axes[1].set_ylabel("errors %")
    for col, style in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
        axes[2].plot(t, rows[col], style, label=col.replace("_ms", ""))
    axes[2].set_ylabel("latency ms")
    axes[2].legend(loc="upper left", fontsize=8)
    axes[3].step(t, rows["vus"], where="post", color="#8250df")
    axes[3].set_ylabel("VUs")
    for ax in axes:
        ax.grid(alpha=0.3)
    _time_axis(axes[-1])
    if title:
        axes[0].set_title(_label(title))
    fig.tight_layout()
    return fig


def scenario_timeseries(per_second: pd.DataFrame) -> plt.Figure:
    """Requests/s and p95 per scenario (ramp-up vs spike) on one time axis."""
    rows = per_second[per_second["scenario"] != "all"] if "scenario" in per_second else per_second.iloc[0:0]
    if rows.empty:
        return _message("No per-scenario data in this run record.")
    fig, axes = plt.subplots(2, 1, figsize=(WIDTH, 5), sharex=True)
    for name, part in rows.groupby("scenario"):
        t = pd.to_datetime(part["second"], utc=True)
        axes[0].plot(t, part["rps"], label=_label(name))
        axes[1].plot(t, part["p95_ms"], label=_label(name))
    axes[0].set_ylabel("requests/s")
    axes[1].set_ylabel("p95 ms")
    axes[0].legend(loc="upper left", fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    _time_axis(axes[-1])
    fig.tight_layout()
    return fig


def slo_trends(slo_long: pd.DataFrame, max_panels: int = 6) -> plt.Figure:
    """One panel per SLO: observed value per run, the target line, failed runs in red."""
    if slo_long.empty:
        return _message("No SLO results in the selected runs.")
    names = list(dict.fromkeys(slo_long["name"]))[:max_panels]
    fig, axes = plt.subplots(len(names), 1, figsize=(WIDTH, 2.3 * len(names) + 0.4), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        part = slo_long[slo_long["name"] == name].reset_index(drop=True)
        x = np.arange(len(part))
        ax.plot(x, part["observed"], color="#57606a", lw=1)
        _status_dots(ax, x, part["observed"], part["status"], 18)
        target = part["target"].dropna()
        if not target.empty:
            ax.axhline(float(target.iloc[-1]), color=FAIL_COLOR, ls="--", lw=1, label="target")
            ax.legend(loc="upper left", fontsize=8)
        _log_if_wide(ax, pd.concat([part["observed"], target]), unit_ms=str(part["metric"].iloc[0]).endswith(
            "_duration"))
        ax.set_title(_label(name), fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    _runs_axis(axes[-1, 0])
    fig.tight_layout()
    return fig


def _log_if_wide(ax: plt.Axes, values: pd.Series | np.ndarray, unit_ms: bool) -> None:
    """Log y-axis for latencies spanning more than a decade: a 4 → 45 ms step stays visible beside a
    900 ms outlier (on a linear axis both early levels sit flat on zero)."""
    v = pd.to_numeric(pd.Series(np.asarray(values, dtype=float)), errors="coerce").dropna()
    if unit_ms and len(v) and (v > 0).all() and v.max() / v.min() > 10:
        ax.set_yscale("log")


def latency_history(runs: pd.DataFrame, change_points: Sequence[dict] = ()) -> plt.Figure:
    """p95 and p99 of http_req_duration across runs; ``change_points`` (``slohistory`` dicts with
    ``metric`` and ``index``) drawn as vertical lines. Log axis when the values span a decade."""
    cols = [c for c in ("http_req_duration_p95", "http_req_duration_p99") if c in runs]
    if runs.empty or not cols:
        return _message("No latency figures in the selected runs.")
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6))
    x = np.arange(len(runs))
    for col, style in zip(cols, ("-", "--"), strict=False):
        ax.plot(x, runs[col], style, color="#57606a", lw=1, label=col.replace("http_req_duration_", ""))
        _status_dots(ax, x, runs[col], runs["status"], 14)
    for i in sorted({cp["index"] for cp in change_points if cp.get("metric") in cols}):
        ax.axvline(i - 0.5, color="#8250df", lw=2, alpha=0.7)
    _log_if_wide(ax, pd.concat([runs[c] for c in cols]), unit_ms=True)
    ax.set_ylabel("ms")
    _runs_axis(ax)
    ax.set_xlabel("run (oldest → newest); purple line = change point; red dot = failed run")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def burn_rates(short: np.ndarray, long: np.ndarray, short_n: int, long_n: int, factor: float) -> plt.Figure:
    if len(short) == 0:
        return _message("No runs selected.")
    fig, ax = plt.subplots(figsize=(WIDTH, 2.8))
    x = np.arange(len(short))
    ax.plot(x, short, label=f"short window ({short_n} runs)")
    ax.plot(x, long, label=f"long window ({long_n} runs)")
    ax.axhline(factor, color=FAIL_COLOR, ls="--", lw=1, label=f"alert factor {factor:g}")
    ax.axhline(1, color="#57606a", ls=":", lw=1, label="burning exactly the budget")
    ax.set_ylabel("burn rate")
    _runs_axis(ax)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def run_series(runs: pd.DataFrame, columns: Sequence[str], title: str, ylabel: str = "") -> plt.Figure:
    """Several numeric columns across runs (Redis trends and the like)."""
    cols = [c for c in columns if c in runs and pd.to_numeric(runs[c], errors="coerce").notna().any()]
    if runs.empty or not cols:
        return _message(f"{title}: no data in the selected runs.", 0.8)
    fig, ax = plt.subplots(figsize=(WIDTH, 3))
    x = np.arange(len(runs))
    for col in cols[:8]:
        ax.plot(x, pd.to_numeric(runs[col], errors="coerce"), marker=".", label=_label(col))
    ax.set_title(_label(title), fontsize=10, loc="left")
    ax.set_ylabel(ylabel)
    _runs_axis(ax)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def aligned_timeline(per_second: pd.DataFrame, timeline: pd.DataFrame, series: Sequence[tuple[str, str]]) -> plt.Figure:
    """k6 requests/s and p95 above Redis timeline series, all on the same UTC time axis.

    ``timeline`` has a ``time`` column (UTC datetimes); ``series`` is ``[(column, label), ...]``.
    """
    present = [(c, lab) for c, lab in series if c in timeline and timeline[c].notna().any()]
    if timeline.empty or not present:
        return _message("No Redis timeline in this run record.")
    k6 = per_second[per_second["scenario"] == "all"] if not per_second.empty else per_second
    n = 2 + len(present)
    fig, axes = plt.subplots(n, 1, figsize=(WIDTH, 1.7 * n + 0.5), sharex=True)
    if not k6.empty:
        t = pd.to_datetime(k6["second"], utc=True)
        axes[0].plot(t, k6["rps"], color="#0969da")
        axes[1].plot(t, k6["p95_ms"], color="#bc4c00")
    axes[0].set_ylabel("k6 req/s")
    axes[1].set_ylabel("k6 p95 ms")
    for ax, (col, label) in zip(axes[2:], present, strict=True):
        ax.plot(timeline["time"], timeline[col], color="#8250df")
        ax.set_ylabel(_label(label), fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    _time_axis(axes[-1])
    fig.tight_layout()
    return fig


def bar(frame: pd.DataFrame, label_col: str, value_col: str, title: str, xlabel: str) -> plt.Figure:
    if frame.empty:
        return _message(f"{title}: no data", 0.8)
    part = frame.head(15).iloc[::-1]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.35 * len(part) + 1.2))
    ax.barh([_label(v) for v in part[label_col]], part[value_col], color="#0969da")
    ax.set_title(_label(title), fontsize=10, loc="left")
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def deployments_timeline(ledger: pd.DataFrame) -> plt.Figure:
    """Each deployment as a dot on its start time, per environment; rollbacks as triangles."""
    if ledger.empty:
        return _message("The ledger has no deployments.")
    envs = list(dict.fromkeys(ledger["env"].fillna("?")))
    fig, ax = plt.subplots(figsize=(WIDTH, 0.6 * len(envs) + 2))
    colors = {"green": PASS_COLOR, "failed": FAIL_COLOR, "rolled_back": "#bc4c00", "in_progress": "#57606a"}
    for status, part in ledger.groupby(ledger["status"].fillna("?")):
        for is_rb, marker in ((False, "o"), (True, "^")):
            sub = part[part["is_rollback"] == is_rb]
            if sub.empty:
                continue
            y = sub["env"].fillna("?").map(envs.index)
            kind = "rollback" if is_rb else "deploy"
            ax.scatter(sub["started_at"], y, c=colors.get(status, OTHER_COLOR), marker=marker, s=60,
                       label=_label(f"{kind}: {status}"), zorder=3)
    ax.set_yticks(range(len(envs)), [_label(e) for e in envs])
    ax.set_ylim(-0.6, len(envs) - 0.4)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz="UTC"))
    ax.set_xlabel("deployment start (UTC)")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
