"""SLO history across runs: compliance, error budget and burn rates (windows in runs), alerts, change points.

Each run is one time slice (OpenSLO ``Timeslices``): a run is *good* for an SLO when that SLO passed;
``no_data`` counts as bad (an SLO nobody measured is not met). The row "all SLOs" uses the run status
(``pass`` = good).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from hardening.analysis.stats import (
    burn_rate_series,
    change_points,
    error_budget,
    failure_alert,
    multiwindow_alert,
)
from hardening.record.reader import slo_frame

ALL_SLOS = "all SLOs (run status)"
LATENCY_COLUMNS = ("http_req_duration_p95", "http_req_duration_p99")


@dataclass
class HistoryParams:
    objective: float = 0.9  # share of runs that must be good
    window: int = 30  # compliance window in runs
    short_window: int = 5
    long_window: int = 20
    burn_factor: float = 2.0
    alert_last: int = 10  # "failed in N of the last M runs"


def good_series(runs: pd.DataFrame) -> dict[str, list[bool]]:
    """Per SLO name (plus the run status) the good/bad sequence, oldest run first."""
    out: dict[str, list[bool]] = {ALL_SLOS: (runs["status"] == "pass").tolist()}
    long = slo_frame(runs)
    for name, part in long.groupby("name", sort=False):
        out[str(name)] = (part["status"] == "pass").tolist()
    return out


def budget_table(runs: pd.DataFrame, p: HistoryParams) -> pd.DataFrame:
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


def latency_change_points(runs: pd.DataFrame, alpha: float = 0.001, min_size: int = 3) -> list[dict[str, Any]]:
    out = []
    for col in LATENCY_COLUMNS:
        if col not in runs:
            continue
        for cp in change_points(pd.to_numeric(runs[col], errors="coerce").to_numpy(), min_size=min_size,
                                alpha=alpha):
            row = runs.iloc[cp.index]
            out.append({"metric": col, "index": cp.index, "run_id": row["run_id"],
                        "started_at": row["started_at"], "before_median": cp.before_median,
                        "after_median": cp.after_median,
                        "relative_change": cp.relative_change, "p_value": cp.p_value})
    return out


def change_point_frame(points: list[dict[str, Any]]) -> pd.DataFrame:
    """The change points of :func:`latency_change_points` as a table (metric names shortened)."""
    frame = pd.DataFrame(points)
    if not frame.empty:
        frame["metric"] = frame["metric"].str.replace("http_req_duration_", "", regex=False)
    return frame


def summarize(runs: pd.DataFrame, p: HistoryParams) -> dict[str, Any]:
    """Everything the SLO-history report states, in machine-readable form (the notebook's side file)."""
    series = good_series(runs)
    overall = series[ALL_SLOS]
    budget = error_budget(overall, p.objective, p.window)
    alert = multiwindow_alert(overall, p.objective, p.short_window, p.long_window, p.burn_factor)
    fail = failure_alert(overall, p.alert_last)
    per_slo = {}
    for name, good in series.items():
        if name == ALL_SLOS:
            continue
        per_slo[name] = {"compliance": sum(good) / len(good) if good else None,
                         "error_budget": error_budget(good, p.objective, p.window).to_dict(),
                         "alert": failure_alert(good, p.alert_last, what=name).to_dict()}
    return {
        "runs": len(runs), "skipped": len(runs.attrs.get("skipped", [])), "params": vars(p),
        "compliance": sum(overall) / len(overall) if overall else None,
        "error_budget": budget.to_dict(), "burn_alert": alert.to_dict(), "failure_alert": fail.to_dict(),
        "per_slo": per_slo, "change_points": latency_change_points(runs),
    }


def burn_series(runs: pd.DataFrame, p: HistoryParams) -> tuple[Any, Any]:
    good = (runs["status"] == "pass").tolist()
    return burn_rate_series(good, p.short_window, p.objective), burn_rate_series(good, p.long_window, p.objective)
