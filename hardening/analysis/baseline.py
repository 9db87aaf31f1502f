"""Compare one run with its baseline: the last passing run of the same environment and script.

Distributions compared (``hardening.analysis.stats.compare``): the per-second p95 and error rate of the whole test
(``per_second.parquet`` rows with scenario ``all``) and, when both runs kept raw samples, every
``http_req_duration`` sample. The headline percentage is the change of the run-level p95 in ``run.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hardening.analysis.stats import Comparison, compare
from hardening.record.model import RunRecord
from hardening.record.reader import RunData, find_baseline, load_run

ALL = "all"


@dataclass
class BaselineResult:
    baseline_id: str | None
    headline: str
    p95_change: float | None  # relative change of run-level http_req_duration p(95)
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def regression(self) -> bool:
        return any(c.classification == "High" for c in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_id": self.baseline_id, "headline": self.headline, "p95_change": self.p95_change,
                "regression": self.regression, "comparisons": [c.to_dict() for c in self.comparisons]}


def _overall(per_second: pd.DataFrame, column: str) -> list[float]:
    if per_second.empty or column not in per_second:
        return []
    rows = per_second[per_second["scenario"] == ALL] if "scenario" in per_second else per_second
    return rows[column].dropna().astype(float).tolist()


def _p95(record: RunRecord) -> float | None:
    value = (record.metrics.http_req_duration or {}).get("p(95)")
    return float(value) if value is not None else None


def compare_runs(run: RunData, base: RunData, confidence: float = 0.98, tolerance: float = 0.25) -> BaselineResult:
    comps = [
        compare(_overall(run.per_second, "p95_ms"), _overall(base.per_second, "p95_ms"),
                "p95 per second (ms)", confidence, tolerance),
        compare(_overall(run.per_second, "error_rate"), _overall(base.per_second, "error_rate"),
                "error rate per second", confidence, tolerance),
    ]
    if run.has_samples and base.has_samples:
        cur = run.samples("http_req_duration")["value"].to_numpy()
        old = base.samples("http_req_duration")["value"].to_numpy()
        comps.append(compare(cur, old, "http_req_duration samples (ms)", confidence, tolerance))
    cur_p95, base_p95 = _p95(run.record), _p95(base.record)
    change = (cur_p95 - base_p95) / base_p95 if cur_p95 is not None and base_p95 else None
    lead = comps[0]
    if lead.classification == "NoData":
        verdict = "not enough per-second data to test"
    else:
        verdict = "significant" if lead.significant else "not significant"
        verdict += f" ({lead.classification}, Mann-Whitney p={lead.p_value:.3g})"
    pct = "p95 n/a" if change is None else f"p95 {change * 100:+.0f}%"
    return BaselineResult(base.run_id, f"{pct} vs baseline run {base.run_id}, {verdict}", change, comps)


def against_baseline(run: RunData, history: pd.DataFrame, confidence: float = 0.98,
                     tolerance: float = 0.25) -> BaselineResult:
    """Find the baseline in ``history`` and compare; a headline saying why when there is none."""
    row = find_baseline(history, run.record)
    if row is None:
        env, script = run.record.environment, run.record.script
        return BaselineResult(None, f"no baseline: no earlier passing run of environment {env!r} and script "
                              f"{script!r} in the history", None)
    return compare_runs(run, load_run(row["path"]), confidence, tolerance)


def comparison_frame(result: BaselineResult) -> pd.DataFrame:
    """The comparison as a table: one row per compared distribution."""
    rows = [{"metric": c.metric, "result": c.classification, "significant": c.significant,
             "baseline median": c.baseline_median, "run median": c.current_median, "HL shift": c.shift,
             f"CI low ({c.confidence:.0%})": c.ci_low, "CI high": c.ci_high,
             "relative shift": c.relative_shift, "p-value": c.p_value, "n run / baseline": f"{c.n_current} / "
             f"{c.n_baseline}"} for c in result.comparisons]
    return pd.DataFrame(rows)
