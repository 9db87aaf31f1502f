"""The run report's view of the run-vs-baseline judge (:mod:`hardening.analysis.judge`).

``against_baseline(run, history)`` judges the run with the one judge (pooled baseline of the last passing runs of
the same environment, profile and script content, flagged runs left out, or the pin) and returns a
:class:`BaselineResult`: ``headline`` is the judge's sentence, ``comparisons`` its latency series, ``verdict``
the whole verdict. ``comparison_frame(result)`` is the table (one row per latency series, then the errors).
The headline, the table, ``hardening compare`` and its exit code therefore always agree.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from hardening.analysis import units
from hardening.analysis.judge import NONE, JudgeSettings, SeriesResult, Verdict, judge, resolve_run
from hardening.errors import ConfigError
from hardening.record.reader import RunData, read_record


@dataclass
class BaselineResult:
    baseline_id: str | None  # the newest run of the baseline (all of them: ``baseline_ids``)
    headline: str
    p95_change: float | None  # run-level p(95) of the record vs the baseline runs' median p(95); context only
    comparisons: list[SeriesResult] = field(default_factory=list)  # the judge's latency series
    verdict: Verdict | None = None

    @property
    def baseline_ids(self) -> list[str]:
        return list(self.verdict.baseline) if self.verdict else []

    @property
    def regression(self) -> bool:
        return bool(self.verdict and self.verdict.regression)

    def to_dict(self) -> dict[str, Any]:
        return {"baseline_id": self.baseline_id, "baseline_ids": self.baseline_ids,
                "baseline_mode": self.verdict.baseline_mode if self.verdict else NONE,
                "headline": self.headline, "p95_change": self.p95_change, "regression": self.regression,
                "comparisons": [c.to_dict() for c in self.comparisons],
                "verdict": self.verdict.to_dict() if self.verdict else None}


def _p95(path: str | os.PathLike[str]) -> float | None:
    value = (read_record(path).metrics.http_req_duration or {}).get("p(95)")
    return float(value) if value is not None else None


def from_verdict(verdict: Verdict, run_path: str | os.PathLike[str] | None = None,
                 history_dir: str | os.PathLike[str] | None = None) -> BaselineResult:
    """A :class:`BaselineResult` of a verdict (``p95_change`` needs the run and history folders)."""
    change = None
    if run_path is not None and verdict.baseline:
        try:
            cur = _p95(run_path)
            olds = [p for b in verdict.baseline if (p := _p95(resolve_run(b, history_dir))) is not None]
            if cur is not None and olds and statistics.median(olds):
                change = cur / statistics.median(olds) - 1
        except ConfigError:
            change = None
    return BaselineResult(verdict.baseline[-1] if verdict.baseline else None, verdict.headline, change,
                          list(verdict.series), verdict)


def against_baseline(run: RunData | str | os.PathLike[str], history: pd.DataFrame | str | os.PathLike[str] | None,
                     confidence: float = 0.98, tolerance: float | None = None,
                     baseline: str | None = None, settings: JudgeSettings | None = None) -> BaselineResult:
    """Judge ``run`` against its baseline in ``history`` (``load_runs`` DataFrame or folder).

    ``tolerance`` is the judge's relative latency tolerance (default 0.05 = 5% of the baseline median); the
    Kayenta-style ``tolerance × |shift|`` of earlier versions is gone. ``baseline``: see
    :func:`hardening.analysis.judge.judge`. The headline says "no baseline: ..." when there is none.
    """
    settings = replace(settings or JudgeSettings(), confidence=confidence,
                       **({"tolerance": tolerance} if tolerance is not None else {}))
    run_path = run.path if isinstance(run, RunData) else Path(run)
    verdict = judge(run_path, history, baseline, settings)
    history_dir = _dir_of(history, run_path)
    return from_verdict(verdict, run_path, history_dir)


def _dir_of(history: pd.DataFrame | str | os.PathLike[str] | None, run_path: Path) -> Path:
    if isinstance(history, pd.DataFrame):
        if not history.empty and "path" in history:
            return Path(history["path"].iloc[0]).parent
        return Path(run_path).parent
    return Path(history) if history is not None else Path(run_path).parent


def compare_runs(run: RunData, base: RunData, confidence: float = 0.98,
                 tolerance: float | None = None) -> BaselineResult:
    """``run`` against the single run ``base`` (an explicit baseline), with the same judge."""
    return against_baseline(run, None, confidence, tolerance, baseline=str(base.path))


def comparison_frame(result: BaselineResult) -> pd.DataFrame:
    """The comparison as a table with units: one row per latency series, then the error counts."""
    v = result.verdict
    cols = ["check", "result", "run", "baseline", "change", "CI", "p-value", "p vs tolerance (Holm)",
            "n run / baseline"]
    if v is None or v.baseline_mode == NONE:
        return pd.DataFrame(columns=cols)
    conf = f"{v.settings.confidence:.0%}"
    rows = []
    for s in v.series:
        rows.append({
            "check": f"latency {s.series}", "result": s.classification,
            "run": units.ms(s.median_ms), "baseline": units.ms(s.baseline_median_ms),
            "change": f"{units.ms(s.shift_ms, sign=True)} ({units.pct(s.relative, sign=True)})" if s.tested
            else s.note,
            "CI": f"{units.ms(s.ci_ms[0], sign=True)} to {units.ms(s.ci_ms[1], sign=True)} ({conf})" if s.ci_ms
            else "",
            "p-value": units.pvalue(s.p_value), "p vs tolerance (Holm)": units.pvalue(s.p_adjusted),
            "n run / baseline": f"{s.n} / {s.n_baseline}"})
    e = v.errors
    rows.append({
        "check": "errors", "result": ("High" if e.regression else "Pass") if e.tested else "NoData",
        "run": f"{units.pct(e.rate)} ({e.failed}/{e.total})" if e.tested else "n/a",
        "baseline": f"{units.pct(e.baseline_rate)} ({e.baseline_failed}/{e.baseline_total})" if e.tested else "n/a",
        "change": units.pp(e.diff) if e.tested else e.note,
        "CI": f"{units.pp(e.diff_ci[0])} to {units.pp(e.diff_ci[1])} ({conf})" if e.diff_ci else "",
        "p-value": units.pvalue(e.p_value), "p vs tolerance (Holm)": "",
        "n run / baseline": f"{e.total} / {e.baseline_total}" if e.tested else ""})
    return pd.DataFrame(rows, columns=cols)
