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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from IPython.display import HTML, display

from hardening.analysis import units
from hardening.analysis.budget import BurnAlert, ErrorBudget, FailureAlert
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
    p_value,
    starts_here,
    table,
    times,
    when,
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
class SloFigures:
    """One SLO over the selected runs."""

    compliance: float | None
    error_budget: ErrorBudget
    alert: FailureAlert


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
    error_budget: ErrorBudget
    burn_alert: BurnAlert
    failure_alert: FailureAlert
    per_slo: dict[str, SloFigures] = field(default_factory=dict)
    change_points: list[ChangePointRow] = field(default_factory=list)
    filters: str = "none"
    highlight_run: str = ""
    first_run: bool = False  # one run (or none) selected: "history starts here", no charts
    x_ticks: dict[str, list[str]] = field(default_factory=dict)  # per chart, its x tick labels (run start times)

    def index_line(self) -> str | None:
        if self.first_run:
            return f"History: starts here ({self.runs} run{'' if self.runs == 1 else 's'} so far)"
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
    from hardening.analysis.budget import error_budget, failure_alert, multiwindow_alert

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


CHANGE_POINT_UNITS = {"before_median": "ms", "after_median": "ms", "relative_change": "+%", "p_value": "p",
                      "started_at": "time"}
BUDGET_UNITS = {"compliance (all runs)": "%", "budget left": "%"}
RUN_UNITS = {"http_req_duration_p95": "ms", "error_rate": "%", "started_at": "time"}


def summarize(runs: pd.DataFrame, p: HistoryParams, filters: str = "none", highlight_run: str = "") -> SloHistorySummary:
    """Everything the SLO-history report states, typed (the notebook's side file)."""
    from hardening.analysis.budget import error_budget, failure_alert, multiwindow_alert

    series = good_series(runs)
    overall = series[ALL_SLOS]
    per_slo = {name: SloFigures(compliance=sum(good) / len(good) if good else None,
                                error_budget=error_budget(good, p.objective, p.window),
                                alert=failure_alert(good, p.alert_last, what=name))
               for name, good in series.items() if name != ALL_SLOS}
    burn = multiwindow_alert(overall, p.objective, p.short_window, p.long_window, p.burn_factor)
    return SloHistorySummary(
        runs=len(runs), skipped=len(runs.attrs.get("skipped", [])), params=p,
        compliance=sum(overall) / len(overall) if overall else None,
        error_budget=error_budget(overall, p.objective, p.window),
        burn_alert=burn,
        failure_alert=failure_alert(overall, p.alert_last), per_slo=per_slo,
        change_points=latency_change_points(runs), filters=filters, highlight_run=highlight_run,
        first_run=len(runs) <= 1)


def burn_series(runs: pd.DataFrame, p: HistoryParams) -> tuple[np.ndarray, np.ndarray]:
    from hardening.analysis.budget import burn_rate_series

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
        return pd.DataFrame(columns=["run_id", "started_at"])
    return runs[["run_id", "started_at"]].merge(out, on="run_id", how="left")


# ---------------------------------------------------------------- banner and figures


def p_text(p: float) -> str:
    shown = p_value(p)
    return shown if shown.startswith("<") else f"= {shown}"


def history_banner(s: SloHistorySummary) -> HTML:
    """Top of the SLO history: alert sentence, compliance, budget left, burn alert, change points."""
    budget, burn = s.error_budget, s.burn_alert
    if s.first_run:
        what = "No run" if s.runs == 0 else "One run"
        lines = [f"{what} in the selected history (filters: {s.filters}). Trends, error budget burn and change "
                 "points need earlier runs; they appear from the second run on."]
        if s.highlight_run:
            lines.append(f"this run: {s.highlight_run}")
        return banner("History starts here", lines, "other")
    lines = [
        f"{s.runs} runs (filters: {s.filters}); {s.skipped} unreadable records skipped",
        f"compliance {units.pct(s.compliance)} of runs passed; objective {units.pct(budget.objective)}",
        (f"error budget left over the last {budget.window} runs: {units.pct(budget.remaining)} "
         f"({budget.bad} bad runs of {fmt(budget.budget_runs)} allowed)"),
        (f"burn rate {times(burn.short_burn)} over {burn.short_window} runs, {times(burn.long_burn)} over "
         f"{burn.long_window} runs — multi-window alert {'FIRING' if burn.firing else 'quiet'} "
         f"(factor {burn.factor:g}×)"),
    ]
    for cp in s.change_points:
        rel = f" ({units.pct(cp.relative_change, sign=True)})" if cp.relative_change is not None else ""
        lines.append(f"change point in {cp.metric.replace('http_req_duration_', '')} at run {cp.run_id} "
                     f"(started {when(cp.started_at)}): median {units.ms(cp.before_median)} → "
                     f"{units.ms(cp.after_median)}{rel}, p {p_text(cp.p_value)}")
    if s.highlight_run:
        lines.append(f"this run: {s.highlight_run}")
    firing = s.failure_alert.firing or burn.firing
    return banner(s.failure_alert.text, lines, "fail" if firing else "pass")


def slo_trends_figure(slo_long: pd.DataFrame, runs: pd.DataFrame | None = None, max_panels: int = 6) -> plt.Figure:
    """One panel per SLO: observed value per run, the target line, failed runs in red. The panels share one
    x axis, one position per run of ``runs`` (default: the runs in ``slo_long``), labelled with start times."""
    if slo_long.empty:
        return charts.message("No SLO results in the selected runs.")
    if runs is None:
        runs = slo_long.drop_duplicates("run_id")[["run_id", "started_at"]]
    position = {rid: i for i, rid in enumerate(runs["run_id"])}
    names = list(dict.fromkeys(slo_long["name"]))[:max_panels]
    fig, axes = charts.subplots(len(names), 1, figsize=(charts.WIDTH, 2.4 * len(names) + 0.8), squeeze=False,
                                sharex=True)
    for ax, name in zip(axes[:, 0], names, strict=True):
        part = slo_long[slo_long["name"] == name].reset_index(drop=True)
        x = part["run_id"].map(position).to_numpy(dtype=float)
        ax.plot(x, part["observed"], color=MUTED_COLOR, lw=1)
        charts.status_dots(ax, x, part["observed"], part["status"], 22)
        target = part["target"].dropna()
        if not target.empty:
            ax.axhline(float(target.iloc[-1]), color=FAIL_COLOR, ls="--", lw=1, label="target")
            ax.legend(loc="upper left", fontsize=9)
        charts.log_if_wide(ax, pd.concat([part["observed"], target]),
                           unit_ms=str(part["metric"].iloc[0]).endswith("_duration"))
        ax.set_title(charts.label(name), loc="left")
        ax.grid(alpha=0.3)
    charts.runs_axis(axes[-1, 0], runs["started_at"])
    fig.tight_layout()
    return fig


def latency_figure(runs: pd.DataFrame, points: Sequence[ChangePointRow] = ()) -> plt.Figure:
    """p95 and p99 of http_req_duration across runs, change points as vertical lines; log axis when the
    values span a decade."""
    cols = [c for c in LATENCY_COLUMNS if c in runs]
    if runs.empty or not cols:
        return charts.message("No latency figures in the selected runs.")
    fig, ax = charts.subplots(figsize=(charts.WIDTH, 4))
    x = np.arange(len(runs))
    for col, line in zip(cols, ("-", "--"), strict=False):
        ax.plot(x, runs[col], line, color=MUTED_COLOR, lw=1, label=col.replace("http_req_duration_", ""))
        charts.status_dots(ax, x, runs[col], runs["status"], 18)
    for i in sorted({cp.index for cp in points if cp.metric in cols}):
        ax.axvline(i - 0.5, color=PURPLE, lw=2, alpha=0.7)
    charts.log_if_wide(ax, pd.concat([runs[c] for c in cols]), unit_ms=True)
    ax.set_ylabel("ms")
    charts.runs_axis(ax, runs["started_at"], "purple line = change point; red dot = failed run")
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def burn_figure(short: np.ndarray, long: np.ndarray, short_n: int, long_n: int, factor: float,
                started: Sequence[object] | pd.Series = ()) -> plt.Figure:
    if len(short) == 0:
        return charts.message("No runs selected.")
    fig, ax = charts.subplots(figsize=(charts.WIDTH, 3.2))
    x = np.arange(len(short))
    ax.plot(x, short, label=f"short window ({short_n} runs)")
    ax.plot(x, long, label=f"long window ({long_n} runs)")
    ax.axhline(factor, color=FAIL_COLOR, ls="--", lw=1, label=f"alert factor {factor:g}×")
    ax.axhline(1, color=MUTED_COLOR, ls=":", lw=1, label="burning exactly the budget")
    ax.set_ylabel("burn rate (×)")
    charts.runs_axis(ax, list(started) if len(started) == len(short) else [None] * len(short))
    ax.legend(loc="upper left", fontsize=9)
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

    @property
    def first_run(self) -> bool:
        return self.summary.first_run

    def _starts_here(self, what: str) -> None:
        """The first-run state where a chart across runs would be: a sentence, no empty axes."""
        display(starts_here(f"History starts here: {what} needs at least two runs; "
                            f"{self.summary.runs} in the selected history so far."))

    def _keep_ticks(self, name: str, fig: plt.Figure) -> plt.Figure:
        self.summary.x_ticks[name] = charts.tick_labels(fig)
        return fig

    def budget_table(self) -> HTML:
        return table(budget_frame(self.runs, self.params), units=BUDGET_UNITS | {
            f"burn {self.params.short_window} runs": "×", f"burn {self.params.long_window} runs": "×"})

    def burn_figure(self) -> plt.Figure | None:
        if self.first_run:
            return self._starts_here("the burn rate across runs")
        p = self.params
        return self._keep_ticks("burn", burn_figure(*burn_series(self.runs, p), p.short_window, p.long_window,
                                                    p.burn_factor, self.runs["started_at"]))

    def slo_trends_figure(self) -> plt.Figure | None:
        if self.first_run:
            return self._starts_here("the trend per SLO")
        return self._keep_ticks("slo_trends", slo_trends_figure(slo_frame(self.runs), self.runs))

    def change_points_table(self) -> HTML:
        if self.first_run:
            return note("Change points need a history: none yet.")
        points = self.summary.change_points
        if not points:
            return note("No change point in p95/p99 across the selected runs.")
        return table(change_point_frame(points).drop(columns="index"), "Change points (split-merge, Welch t-test)",
                     units=CHANGE_POINT_UNITS)

    def latency_figure(self) -> plt.Figure | None:
        if self.first_run:
            return self._starts_here("latency across runs")
        return self._keep_ticks("latency", latency_figure(self.runs, self.summary.change_points))

    def redis_section(self) -> HTML | None:
        """Redis across runs: four figures, or a note when no selected run has a Redis comparison."""
        trends = redis_trends(self.runs)
        if len(trends.columns) < 3:
            return note("No Redis data in the selected runs.")
        if self.first_run:
            return starts_here("History starts here: Redis across runs needs at least two runs.")
        figs = [charts.run_series(trends, [c for c in trends if c.endswith("µs/call")], "Command execution time",
                                  "µs per call"),
                charts.run_series(trends, ["used_memory_growth"], "Memory growth during the run", "bytes"),
                charts.run_series(trends, ["peak_connected_clients", "peak_blocked_clients"], "Clients (peak)"),
                charts.run_series(trends, ["slowlog_new_entries", "latency_events"],
                                  "Slowlog entries and latency events")]
        self._keep_ticks("redis", figs[0])
        return None

    def runs_table(self, max_rows: int = 30) -> HTML:
        cols = [c for c in RUN_COLUMNS if c in self.runs]
        shown = self.runs[cols].iloc[::-1].rename(columns={"status": "result"})  # the run's verdict, shown first
        return table(shown, "Newest first", max_rows=max_rows, units=RUN_UNITS)
