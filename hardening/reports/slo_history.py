"""The SLO history report (``notebooks/slo_history.ipynb``): compliance, error budget and burn rates (windows
in runs), alerts, latency change points and Redis trends across runs.

Each run is one time slice (OpenSLO ``Timeslices``): a run is *good* for an SLO when that SLO passed;
``no_data`` counts as bad (an SLO nobody measured is not met). The row "all SLOs" uses the run status
(``pass`` = good). The statistics are :mod:`hardening.analysis.stats`' (imported where used); the side
file copies the figures into this module's own dataclasses, so its contract does not move with that API.

:class:`SloHistory` is the view model the notebook calls; :class:`SloHistorySummary` is its side file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from IPython.display import HTML

from hardening.record.layout import RunLayout
from hardening.record.model import RunStatus
from hardening.record.reader import load_runs, slo_frame
from hardening.reports import charts
from hardening.reports.redis_report import read_comparison
from hardening.reports.style import (
    FAIL_COLOR,
    MUTED_COLOR,
    PURPLE,
    Summary,
    banner,
    fmt,
    note,
    pct,
    table,
)

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

NAME, TITLE = "slo_history", "SLO history"
ALL_SLOS = "all SLOs (run status)"
LATENCY_COLUMNS = ("http_req_duration_p95", "http_req_duration_p99")
RUN_COLUMNS = ("run_id", "started_at", "status", "environment", "branch", "script", "slo_failed",
               "http_req_duration_p95", "error_rate")


@dataclass
class HistoryParams:
    objective: float = 0.9  # share of runs that must be good
    window: int = 30  # compliance window in runs
    short_window: int = 5
    long_window: int = 20
    burn_factor: float = 2.0
    alert_last: int = 10  # "failed in N of the last M runs"


# ---------------------------------------------------------------- side file


@dataclass
class BudgetFigures:
    """Error budget over the last ``window`` runs (``hardening.analysis.stats.error_budget``)."""

    objective: float
    window: int
    good: int
    bad: int
    compliance: float | None
    budget_runs: float
    consumed: float | None  # bad / budget_runs (1.0 = exhausted)
    remaining: float | None  # 1 − consumed (negative = overspent)
    burn_rate: float | None


@dataclass
class BurnFigures:
    """Multi-window burn-rate alert (``hardening.analysis.stats.multiwindow_alert``)."""

    short_window: int
    long_window: int
    factor: float
    short_burn: float | None
    long_burn: float | None
    firing: bool


@dataclass
class AlertFigures:
    """"alert: SLO failed in N of the last M runs" (``hardening.analysis.stats.failure_alert``)."""

    failed: int
    runs: int
    text: str
    firing: bool


F = TypeVar("F")


def _figures(kind: type[F], result: Any) -> F:
    """A statistics result copied into the side file's own dataclass (same field names)."""
    return kind(**{f.name: getattr(result, f.name) for f in fields(kind)})  # type: ignore[arg-type]


@dataclass
class SloFigures:
    """One SLO over the selected runs."""

    compliance: float | None
    error_budget: BudgetFigures
    alert: AlertFigures


@dataclass
class ChangePointRow:
    """A level shift of a latency column across runs, at run ``index`` (first run of the new level)."""

    metric: str
    index: int
    run_id: str
    started_at: str | None
    before_median: float
    after_median: float
    relative_change: float | None
    p_value: float


@dataclass
class SloHistorySummary(Summary):
    runs: int
    skipped: int
    params: HistoryParams
    compliance: float | None
    error_budget: BudgetFigures
    burn_alert: BurnFigures
    failure_alert: AlertFigures
    per_slo: dict[str, SloFigures] = field(default_factory=dict)
    change_points: list[ChangePointRow] = field(default_factory=list)
    filters: str = "none"
    highlight_run: str = ""

    def index_line(self) -> str | None:
        return f"History: {self.failure_alert.text}" if self.failure_alert.text else None


# ---------------------------------------------------------------- computations


def good_series(runs: pd.DataFrame) -> dict[str, list[bool]]:
    """Per SLO name (plus the run status) the good/bad sequence, oldest run first."""
    out: dict[str, list[bool]] = {ALL_SLOS: (runs["status"] == RunStatus.PASS).tolist()}
    long = slo_frame(runs)
    for name, part in long.groupby("name", sort=False):
        out[str(name)] = (part["status"] == "pass").tolist()
    return out


def budget_frame(runs: pd.DataFrame, p: HistoryParams) -> pd.DataFrame:
    from hardening.analysis.stats import error_budget, failure_alert, multiwindow_alert

    rows = []
    for name, good in good_series(runs).items():
        eb = error_budget(good, p.objective, p.window)
        alert = multiwindow_alert(good, p.objective, p.short_window, p.long_window, p.burn_factor)
        fa = failure_alert(good, p.alert_last, what=name)
        rows.append({
            "SLO": name, "runs": len(good), "compliance (all runs)": sum(good) / len(good) if good else None,
            "window runs": eb.window, "bad in window": eb.bad, "budget (bad runs allowed)": eb.budget_runs,
            "budget left": eb.remaining, f"burn {p.short_window} runs": alert.short_burn,
            f"burn {p.long_window} runs": alert.long_burn, "burn alert": alert.firing,
            f"failed in last {p.alert_last}": fa.failed, "alert": fa.text,
        })
    return pd.DataFrame(rows)


def latency_change_points(runs: pd.DataFrame, alpha: float = 0.001, min_size: int = 3) -> list[ChangePointRow]:
    from hardening.analysis.stats import change_points

    out = []
    for col in LATENCY_COLUMNS:
        if col not in runs:
            continue
        for cp in change_points(pd.to_numeric(runs[col], errors="coerce").to_numpy(), min_size=min_size,
                                alpha=alpha):
            row = runs.iloc[cp.index]
            started = row["started_at"]
            out.append(ChangePointRow(
                metric=col, index=int(cp.index), run_id=str(row["run_id"]),
                started_at=None if pd.isna(started) else pd.Timestamp(started).isoformat(),
                before_median=cp.before_median, after_median=cp.after_median,
                relative_change=cp.relative_change, p_value=cp.p_value))
    return out


def change_point_frame(points: list[ChangePointRow]) -> pd.DataFrame:
    """The change points as a table (metric names shortened)."""
    frame = pd.DataFrame([vars(cp) for cp in points])
    if not frame.empty:
        frame["metric"] = frame["metric"].str.replace("http_req_duration_", "", regex=False)
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, errors="coerce", format="ISO8601")
    return frame


def summarize(runs: pd.DataFrame, p: HistoryParams, filters: str = "none", highlight_run: str = "") -> SloHistorySummary:
    """Everything the SLO-history report states, typed (the notebook's side file)."""
    from hardening.analysis.stats import error_budget, failure_alert, multiwindow_alert

    series = good_series(runs)
    overall = series[ALL_SLOS]
    per_slo = {name: SloFigures(compliance=sum(good) / len(good) if good else None,
                                error_budget=_figures(BudgetFigures, error_budget(good, p.objective, p.window)),
                                alert=_figures(AlertFigures, failure_alert(good, p.alert_last, what=name)))
               for name, good in series.items() if name != ALL_SLOS}
    burn = multiwindow_alert(overall, p.objective, p.short_window, p.long_window, p.burn_factor)
    return SloHistorySummary(
        runs=len(runs), skipped=len(runs.attrs.get("skipped", [])), params=p,
        compliance=sum(overall) / len(overall) if overall else None,
        error_budget=_figures(BudgetFigures, error_budget(overall, p.objective, p.window)),
        burn_alert=_figures(BurnFigures, burn),
        failure_alert=_figures(AlertFigures, failure_alert(overall, p.alert_last)), per_slo=per_slo,
        change_points=latency_change_points(runs), filters=filters, highlight_run=highlight_run)


def burn_series(runs: pd.DataFrame, p: HistoryParams) -> tuple[np.ndarray, np.ndarray]:
    from hardening.analysis.stats import burn_rate_series

    good = (runs["status"] == RunStatus.PASS).tolist()
    return burn_rate_series(good, p.short_window, p.objective), burn_rate_series(good, p.long_window, p.objective)


def redis_trends(runs: pd.DataFrame, top_commands: int = 6) -> pd.DataFrame:
    """Per run with a Redis comparison: memory growth, peak clients, slowlog/latency-event counts, resets,
    µs per call of the busiest commands. Reads only those runs' comparisons, so the run loader stays fast."""
    rows = []
    for run_id, path in zip(runs["run_id"], runs["path"], strict=True):
        comparison = read_comparison(RunLayout(Path(path)).redis)
        if comparison is None:
            continue
        agg = comparison.get("aggregate") or {}
        gauges = agg.get("gauges") or {}
        peaks = agg.get("peaks") or {}
        row: dict[str, Any] = {
            "run_id": run_id,
            "used_memory_growth": (gauges.get("used_memory") or {}).get("delta"),
            "peak_connected_clients": peaks.get("connected_clients"),
            "peak_blocked_clients": peaks.get("blocked_clients"),
            "slowlog_new_entries": (agg.get("slowlog") or {}).get("new_entries"),
            "latency_events": len(agg.get("latency_events") or []),
            "ops_per_sec": agg.get("ops_per_sec"),
            "counters_reset": bool((agg.get("reset") or {}).get("detected")),
        }
        for cmd in (agg.get("per_command") or [])[:top_commands]:
            if isinstance(cmd, dict) and cmd.get("command"):
                row[f"{cmd['command']} µs/call"] = cmd.get("usec_per_call")
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["run_id"])
    return runs[["run_id"]].merge(out, on="run_id", how="left")


# ---------------------------------------------------------------- banner and figures


def history_banner(s: SloHistorySummary) -> HTML:
    """Top of the SLO history: alert sentence, compliance, budget left, burn alert, change points."""
    budget, burn = s.error_budget, s.burn_alert
    lines = [
        f"{s.runs} runs (filters: {s.filters}); {s.skipped} unreadable records skipped",
        f"compliance {pct(s.compliance)} of runs passed; objective {pct(budget.objective)}",
        (f"error budget left over the last {budget.window} runs: {pct(budget.remaining)} "
         f"({budget.bad} bad runs of {fmt(budget.budget_runs)} allowed)"),
        (f"burn rate {fmt(burn.short_burn, 2)} over {burn.short_window} runs, {fmt(burn.long_burn, 2)} over "
         f"{burn.long_window} runs — multi-window alert {'FIRING' if burn.firing else 'quiet'} "
         f"(factor {burn.factor:g})"),
    ]
    for cp in s.change_points:
        rel = f" ({cp.relative_change * 100:+.0f}%)" if cp.relative_change is not None else ""
        lines.append(f"change point in {cp.metric.replace('http_req_duration_', '')} at run {cp.run_id}: "
                     f"median {fmt(cp.before_median)} → {fmt(cp.after_median)} ms{rel}")
    if s.highlight_run:
        lines.append(f"this run: {s.highlight_run}")
    firing = s.failure_alert.firing or burn.firing
    return banner(s.failure_alert.text, lines, "fail" if firing else "pass")


def slo_trends_figure(slo_long: pd.DataFrame, max_panels: int = 6) -> plt.Figure:
    """One panel per SLO: observed value per run, the target line, failed runs in red."""
    import matplotlib.pyplot as plt

    if slo_long.empty:
        return charts.message("No SLO results in the selected runs.")
    names = list(dict.fromkeys(slo_long["name"]))[:max_panels]
    fig, axes = plt.subplots(len(names), 1, figsize=(charts.WIDTH, 2.3 * len(names) + 0.4), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        part = slo_long[slo_long["name"] == name].reset_index(drop=True)
        x = np.arange(len(part))
        ax.plot(x, part["observed"], color=MUTED_COLOR, lw=1)
        charts.status_dots(ax, x, part["observed"], part["status"], 18)
        target = part["target"].dropna()
        if not target.empty:
            ax.axhline(float(target.iloc[-1]), color=FAIL_COLOR, ls="--", lw=1, label="target")
            ax.legend(loc="upper left", fontsize=8)
        charts.log_if_wide(ax, pd.concat([part["observed"], target]),
                           unit_ms=str(part["metric"].iloc[0]).endswith("_duration"))
        ax.set_title(charts.label(name), fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    charts.runs_axis(axes[-1, 0])
    fig.tight_layout()
    return fig


def latency_figure(runs: pd.DataFrame, points: Sequence[ChangePointRow] = ()) -> plt.Figure:
    """p95 and p99 of http_req_duration across runs, change points as vertical lines; log axis when the
    values span a decade."""
    import matplotlib.pyplot as plt

    cols = [c for c in LATENCY_COLUMNS if c in runs]
    if runs.empty or not cols:
        return charts.message("No latency figures in the selected runs.")
    fig, ax = plt.subplots(figsize=(charts.WIDTH, 3.6))
    x = np.arange(len(runs))
    for col, line in zip(cols, ("-", "--"), strict=False):
        ax.plot(x, runs[col], line, color=MUTED_COLOR, lw=1, label=col.replace("http_req_duration_", ""))
        charts.status_dots(ax, x, runs[col], runs["status"], 14)
    for i in sorted({cp.index for cp in points if cp.metric in cols}):
        ax.axvline(i - 0.5, color=PURPLE, lw=2, alpha=0.7)
    charts.log_if_wide(ax, pd.concat([runs[c] for c in cols]), unit_ms=True)
    ax.set_ylabel("ms")
    charts.runs_axis(ax)
    ax.set_xlabel("run (oldest → newest); purple line = change point; red dot = failed run")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def burn_figure(short: np.ndarray, long: np.ndarray, short_n: int, long_n: int, factor: float) -> plt.Figure:
    import matplotlib.pyplot as plt

    if len(short) == 0:
        return charts.message("No runs selected.")
    fig, ax = plt.subplots(figsize=(charts.WIDTH, 2.8))
    x = np.arange(len(short))
    ax.plot(x, short, label=f"short window ({short_n} runs)")
    ax.plot(x, long, label=f"long window ({long_n} runs)")
    ax.axhline(factor, color=FAIL_COLOR, ls="--", lw=1, label=f"alert factor {factor:g}")
    ax.axhline(1, color=MUTED_COLOR, ls=":", lw=1, label="burning exactly the budget")
    ax.set_ylabel("burn rate")
    charts.runs_axis(ax)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- view model


@dataclass
class SloHistory:
    """The selected runs and what they say; each method is one section of the notebook."""

    runs: pd.DataFrame
    params: HistoryParams
    summary: SloHistorySummary

    @classmethod
    def load(cls, history_dir: str | os.PathLike[str], environment: str = "", branch: str = "", script: str = "",
             params: HistoryParams | None = None, highlight_run: str = "") -> SloHistory:
        p = params or HistoryParams()
        runs = load_runs(history_dir, environment=environment, branch=branch, script=script)
        chosen = (("environment", environment), ("branch", branch), ("script", script))
        filters = ", ".join(f"{k}={v}" for k, v in chosen if v) or "none"
        return cls(runs, p, summarize(runs, p, filters, highlight_run))

    def banner(self) -> HTML:
        return history_banner(self.summary)

    def budget_table(self) -> HTML:
        return table(budget_frame(self.runs, self.params))

    def burn_figure(self) -> plt.Figure:
        p = self.params
        return burn_figure(*burn_series(self.runs, p), p.short_window, p.long_window, p.burn_factor)

    def slo_trends_figure(self) -> plt.Figure:
        return slo_trends_figure(slo_frame(self.runs))

    def change_points_table(self) -> HTML:
        points = self.summary.change_points
        if not points:
            return note("No change point in p95/p99 across the selected runs.")
        return table(change_point_frame(points), "Change points (split-merge, Welch t-test)")

    def latency_figure(self) -> plt.Figure:
        return latency_figure(self.runs, self.summary.change_points)

    def redis_section(self) -> HTML | None:
        """Redis across runs: four figures, or a note when no selected run has a Redis comparison."""
        trends = redis_trends(self.runs)
        if len(trends.columns) < 2:
            return note("No Redis data in the selected runs.")
        charts.run_series(trends, [c for c in trends if c.endswith("µs/call")], "Command execution time",
                          "µs per call")
        charts.run_series(trends, ["used_memory_growth"], "Memory growth during the run", "bytes")
        charts.run_series(trends, ["peak_connected_clients", "peak_blocked_clients"], "Clients (peak)")
        charts.run_series(trends, ["slowlog_new_entries", "latency_events"], "Slowlog entries and latency events")
        return None

    def runs_table(self, max_rows: int = 30) -> HTML:
        cols = [c for c in RUN_COLUMNS if c in self.runs]
        return table(self.runs[cols].iloc[::-1], "Newest first", max_rows=max_rows)
