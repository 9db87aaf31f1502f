"""The run report (``notebooks/run_report.ipynb``): one load-test run, verdict first.

Verdict banner (which SLO failed and by how much), the SLO table, the run over time and per scenario,
the run's own metrics (every Trend, Counter, Rate and Gauge of its k6 summary, by type) and checks,
then the comparison with the baseline (``hardening.analysis.baseline.against_baseline``: the statistics,
the headline and the comparison table are the judge's; this report only shows them).

:class:`RunReport` is the view model the notebook calls; :class:`RunReportSummary` is its side file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython.display import HTML

from hardening.analysis import units
from hardening.errors import ConfigError
from hardening.record.model import COUNTER, GAUGE, RATE, TREND, RunRecord, SloResult, SloStatus
from hardening.record.reader import RunData, latest_run_dir, load_run, load_runs
from hardening.reports import charts
from hardening.reports.style import (
    BLUE,
    FAIL_COLOR,
    PURPLE,
    Summary,
    banner,
    duration,
    items,
    join,
    note,
    number,
    per_second,
    starts_here,
    table,
    when,
)

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from hardening.analysis.baseline import BaselineResult

NAME, TITLE = "run_report", "Run report"
NO_HISTORY = "no history given: no baseline comparison"


# ---------------------------------------------------------------- side file


@dataclass
class BaselineSummary:
    """The baseline comparison as the side file states it (from ``hardening.analysis.baseline.BaselineResult``)."""

    baseline_id: str | None
    headline: str
    p95_change: float | None = None
    regression: bool = False
    comparisons: list[dict[str, Any]] = field(default_factory=list)  # the judge's series, as it writes them

    @classmethod
    def of(cls, result: BaselineResult) -> BaselineSummary:
        return cls(baseline_id=result.baseline_id, headline=result.headline, p95_change=result.p95_change,
                   regression=result.regression, comparisons=[c.to_dict() for c in result.comparisons])


@dataclass
class RunReportSummary(Summary):
    run_id: str
    verdict: str  # PASS / FAIL / ERROR / INTERRUPTED
    sentence: str  # which SLO failed and by how much
    slo_table: list[dict[str, Any]]  # the SLO table as shown (columns of :func:`slo_frame`)
    baseline: BaselineSummary
    per_second_rows: int = 0

    def index_line(self) -> str | None:
        return f"Baseline: {self.baseline.headline}" if self.baseline.headline else None


# ---------------------------------------------------------------- verdict


def _render(s: SloResult):
    return lambda value, decimals: units.slo_value(s.metric_type, s.aggregation, value, decimals)


def slo_observed(s: SloResult) -> str:
    """The observed value with its unit, with digits enough to tell it from the target (``0.995%`` vs ``1%``)."""
    if s.observed is None:
        return "no data"
    return units.distinct(s.observed, s.target, _render(s))[0]


def slo_target(s: SloResult) -> str:
    """The target as written, with its unit: ``< 800 ms``, ``< 1%``."""
    return f"{s.op} {units.target_text(s.metric_type, s.aggregation, s.target)}"


def slo_margin(s: SloResult, signed: bool = True) -> str:
    """Room left (+) or overshoot (−) in the SLO's unit; rates in percentage points."""
    m = s.margin
    if m is None:
        return "—"
    if s.metric_type == RATE:
        text = units.pp(m)
    elif s.metric_type == TREND:
        text = units.ms(m, sign=True)
    elif s.metric_type == COUNTER and s.aggregation == "rate":
        text = f"{m:+.2f}/s"
    else:
        text = f"{m:+g}"
    return text if signed else text.lstrip("+-")


def slo_mark(s: SloResult) -> str:
    return "✓" if s.status == SloStatus.PASS else "✗"


def slo_line(s: SloResult) -> str:
    """``http_req_failed rate: 1.47% vs < 1% ✗ (slo-file)``: one SLO, observed against target."""
    comparison = units.slo_comparison(s.metric_type, s.aggregation, s.op, s.observed, s.target)
    return f"{s.key} {s.aggregation}: {comparison} {slo_mark(s)} ({s.origin})"


def verdict_text(record: RunRecord) -> tuple[str, str]:
    """(``PASS``/``FAIL``/..., one sentence saying which SLO failed and by how much, with units)."""
    status = str(record.status).upper()
    slos = record.slo_results
    bad = record.failed_slos
    if not slos:
        return status, "no SLO results in this run record"
    if not bad:
        return status, f"all {len(slos)} SLOs met"
    parts = []
    for s in bad:
        if s.status == SloStatus.NO_DATA:
            parts.append(f"{s.name}: no data")
        else:
            parts.append(f"{s.name}: observed {slo_observed(s)}, {slo_margin(s, signed=False)} beyond target "
                         f"{slo_target(s)}")
    return status, f"{len(bad)} of {len(slos)} SLOs not met — " + "; ".join(parts)


def run_facts(record: RunRecord) -> str:
    return (f"run {record.run_id} · environment {record.environment} · profile {record.profile} · script "
            f"{record.script} · branch {record.git.branch} · commit {(record.git.commit or 'n/a')[:12]} · "
            f"started {when(record.started_at)} · lasted {duration(record.duration_s)} · target {record.target}")


def verdict_banner(record: RunRecord) -> HTML:
    """The run's verdict on top of a report (the Redis report shows it too)."""
    status, sentence = verdict_text(record)
    return banner(f"Verdict: {status}", [sentence], status, run_facts(record))


# ---------------------------------------------------------------- tables (DataFrames, for analysts too)


def slo_frame(record: RunRecord) -> pd.DataFrame:
    """The SLO table as numbers (analysts, the side file); :func:`slo_shown` is the same with units."""
    rows = [{"SLO": s.name, "origin": str(s.origin), "observed": s.observed, "target": s.target, "op": s.op,
             "margin": s.margin, "result": str(s.status).upper().replace("_", "-"), "k6 said failed": s.k6_failed}
            for s in record.slo_results]
    return pd.DataFrame(rows, columns=["SLO", "origin", "observed", "target", "op", "margin", "result",
                                       "k6 said failed"])


def slo_shown(record: RunRecord) -> pd.DataFrame:
    """The SLO table as the report shows it: result first, every value with its unit."""
    rows = [{"result": str(s.status).upper().replace("_", "-"), "SLO": f"{s.key} {s.aggregation}",
             "observed": slo_observed(s), "target": slo_target(s), "margin": slo_margin(s), "origin": str(s.origin),
             "k6 said failed": "—" if s.k6_failed is None else ("yes" if s.k6_failed else "no")}
            for s in record.slo_results]
    return pd.DataFrame(rows, columns=["result", "SLO", "observed", "target", "margin", "origin", "k6 said failed"])


def key_metrics_frame(record: RunRecord) -> pd.DataFrame:
    m = record.metrics
    rows = [{"metric": "requests", "value": m.requests}, {"metric": "rps", "value": m.rps},
            {"metric": "error_rate", "value": m.error_rate}, {"metric": "checks_rate", "value": m.checks_rate},
            {"metric": "iterations", "value": m.iterations}, {"metric": "vus_max", "value": m.vus_max}]
    return pd.DataFrame(rows, columns=["metric", "value"])


def key_figures_shown(record: RunRecord) -> pd.DataFrame:
    """The key figures with their units (requests/s, error rate in %, duration in human form)."""
    m = record.metrics
    rows = [("requests", number(m.requests)), ("throughput", per_second(m.rps, " req/s")),
            ("error rate (http_req_failed)", units.pct(m.error_rate)),
            ("checks passed", units.pct(m.checks_rate)), ("iterations", number(m.iterations)),
            ("VUs (max)", number(m.vus_max)), ("duration", duration(record.duration_s))]
    return pd.DataFrame(rows, columns=["metric", "value"])


def instances_frame(record: RunRecord) -> pd.DataFrame:
    """One row per k6 instance of a ``--instances N`` run, never averaged, so a sick load generator shows up."""
    rows = [{"instance": i.instance, "segment": i.segment, "requests": number(i.requests),
             "throughput": per_second(i.rps, " req/s"), "p95": f"{i.p95_ms:.2f} ms" if i.p95_ms is not None else "—",
             "error rate": units.pct(i.error_rate), "iterations": number(i.iterations),
             "k6 exit": f"{i.exit_code} ({i.exit_meaning})" if i.exit_code is not None else "—"}
            for i in record.instances or []]
    return pd.DataFrame(rows, columns=["instance", "segment", "requests", "throughput", "p95", "error rate",
                                       "iterations", "k6 exit"])


TREND_STATS = ("avg", "med", "p(90)", "p(95)", "p(99)", "max")


def trend_frame(record: RunRecord) -> pd.DataFrame:
    """Every Trend metric of the run (http_req_duration first, then the script's own Trends) in ms."""
    rows = [{"metric": name, **{k: values.get(k) for k in TREND_STATS}}
            for name, values in record.metrics.trends().items()]
    return pd.DataFrame(rows, columns=["metric", *TREND_STATS])


def counter_frame(record: RunRecord) -> pd.DataFrame:
    """The script's own Counters, Rates and Gauges, each with its k6 type (``record.metrics.custom``); Trends
    are in :func:`trend_frame`, never here."""
    rows = []
    for name, m in sorted(record.metrics.custom.items()):
        if m.type == COUNTER:
            rows.append({"metric": name, "kind": COUNTER, "value": m.values.get("count"), "rate": m.values.get("rate")})
        elif m.type in (RATE, GAUGE):
            rows.append({"metric": name, "kind": m.type, "value": m.values.get("value"), "rate": None})
    return pd.DataFrame(rows, columns=["metric", "kind", "value", "rate"])


def counter_shown(record: RunRecord) -> pd.DataFrame:
    """:func:`counter_frame` with units: a Counter's count and its rate per second (k6's, else count over the
    run's duration, as k6 computes it), a Rate in %, a Gauge as is."""
    frame = counter_frame(record)
    shown = {COUNTER: number, RATE: units.pct, GAUGE: number}
    secs = record.duration_s

    def rate(kind: str, count: Any, value: Any) -> str:
        if kind != COUNTER:
            return "—"
        if (value is None or value != value) and count is not None and count == count and secs:
            value = count / secs
        return per_second(value)

    frame["per second"] = [rate(k, c, r) for k, c, r in zip(frame["kind"], frame["value"], frame["rate"], strict=True)]
    frame["value"] = [shown[k](v) if v is not None and v == v else "—" for k, v in zip(frame["kind"], frame["value"],
                                                                                      strict=True)]
    return frame.drop(columns="rate")


def checks_frame(k6_summary: dict[str, Any]) -> pd.DataFrame:
    """Every k6 check with passes/fails, walking nested groups of k6's summary (names escaped when shown)."""
    rows: list[dict[str, Any]] = []

    def walk(group: dict[str, Any], path: str) -> None:
        checks = group.get("checks") or {}
        for check in checks.values() if isinstance(checks, dict) else checks:
            passes, fails = int(check.get("passes") or 0), int(check.get("fails") or 0)
            total = passes + fails
            rows.append({"group": path or "(root)", "check": check.get("name"), "passes": passes, "fails": fails,
                         "pass rate": passes / total if total else None})
        groups = group.get("groups") or {}
        for sub in groups.values() if isinstance(groups, dict) else groups:
            walk(sub, f"{path}::{sub.get('name')}" if path else str(sub.get("name")))

    walk(k6_summary.get("root_group") or {}, "")
    return pd.DataFrame(rows, columns=["group", "check", "passes", "fails", "pass rate"])


def scenario_frame(per_second: pd.DataFrame) -> pd.DataFrame:
    """Per-scenario totals from per-second aggregates (``all`` last)."""
    if per_second.empty or "scenario" not in per_second:
        return pd.DataFrame()
    g = per_second.groupby("scenario", sort=True)
    out = pd.DataFrame({
        "seconds": g.size(),
        "requests": g["requests"].sum(),
        "errors": g["errors"].sum(),
        "peak req/s": g["rps"].max(),
        "median per-second p95": g["p95_ms"].median(),
        "worst per-second p95": g["p95_ms"].max(),
        "worst per-second p99": g["p99_ms"].max(),
    })
    out.insert(3, "error rate", out["errors"] / out["requests"].where(out["requests"] > 0))
    out = out.reset_index()
    return pd.concat([out[out["scenario"] != "all"], out[out["scenario"] == "all"]], ignore_index=True)


SCENARIO_UNITS = {"seconds": "s", "requests": "count", "errors": "count", "error rate": "%", "peak req/s": "req/s",
                  "median per-second p95": "ms", "worst per-second p95": "ms", "worst per-second p99": "ms"}


# ---------------------------------------------------------------- figures


def timeseries_figure(per_second: pd.DataFrame, title: str = "") -> plt.Figure:
    """Requests/s, error rate, p50/p95/p99 and VUs per second on one shared time axis."""
    rows = per_second[per_second["scenario"] == "all"] if "scenario" in per_second else per_second
    if rows.empty:
        return charts.message("No per-second data in this run record.")
    t = pd.to_datetime(rows["second"], utc=True)
    fig, axes = charts.subplots(4, 1, figsize=(charts.WIDTH, 9), sharex=True, height_ratios=[1, 0.8, 1.3, 0.8])
    charts.line(axes[0], t, rows["rps"], color=BLUE)
    axes[0].set_ylabel("requests/s")
    charts.line(axes[1], t, rows["error_rate"].fillna(0) * 100, color=FAIL_COLOR)
    axes[1].set_ylabel("errors %")
    for col, style in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
        charts.line(axes[2], t, rows[col], style, label=col.replace("_ms", ""))
    axes[2].set_ylabel("latency ms")
    axes[2].legend(loc="upper left", fontsize=9)
    step_marker = {"marker": "o", "markersize": 4} if len(rows) < charts.MARKERS_BELOW else {}
    axes[3].step(t, rows["vus"], where="post", color=PURPLE, **step_marker)
    axes[3].set_ylabel("VUs")
    for ax in axes:
        ax.grid(alpha=0.3)
    charts.time_axis(axes[-1])
    if title:
        axes[0].set_title(charts.label(title), loc="left")
    fig.tight_layout()
    return fig


def scenario_figure(per_second: pd.DataFrame) -> plt.Figure:
    """Requests/s and p95 per scenario (ramp-up vs spike) on one time axis."""
    rows = per_second[per_second["scenario"] != "all"] if "scenario" in per_second else per_second.iloc[0:0]
    if rows.empty:
        return charts.message("No per-scenario data in this run record.")
    fig, axes = charts.subplots(2, 1, figsize=(charts.WIDTH, 5.5), sharex=True)
    for name, part in rows.groupby("scenario"):  # markers on short series: a one-second scenario is one dot
        t = pd.to_datetime(part["second"], utc=True)
        charts.line(axes[0], t, part["rps"], label=charts.label(name))
        charts.line(axes[1], t, part["p95_ms"], label=charts.label(name))
    axes[0].set_ylabel("requests/s")
    axes[1].set_ylabel("p95 ms")
    axes[0].legend(loc="upper left", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
    charts.time_axis(axes[-1])
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- view model


@dataclass
class RunReport:
    """One run and its baseline comparison; each method is one section of the notebook."""

    run: RunData
    baseline: BaselineResult

    @classmethod
    def load(cls, run_dir: str = "", history_dir: str = "", confidence: float = 0.98,
             tolerance: float | None = None) -> RunReport:
        """``run_dir`` (empty: the newest run of ``history_dir``); baseline searched in ``history_dir``.
        ``confidence`` and ``tolerance`` go to the baseline judge (``tolerance`` None: the judge's default)."""
        from hardening.analysis import baseline as baselines

        if not run_dir and not history_dir:
            raise ConfigError("run_report needs run_dir (a run folder) or history_dir (its newest run is shown)")
        run = load_run(run_dir or latest_run_dir(history_dir))
        if history_dir:
            extra = () if tolerance is None else (tolerance,)
            base = baselines.against_baseline(run, load_runs(history_dir), confidence, *extra)
        else:
            base = baselines.BaselineResult(None, NO_HISTORY, None)
        return cls(run, base)

    @property
    def record(self) -> RunRecord:
        return self.run.record

    def verdict_banner(self) -> HTML:
        return verdict_banner(self.record)

    def slo_section(self) -> HTML:
        return join(table(slo_shown(self.record)), note("Baseline: " + self.baseline.headline))

    def timeseries_figure(self) -> plt.Figure:
        return timeseries_figure(self.run.per_second, f"run {self.record.run_id}")

    def scenario_table(self) -> HTML:
        """Per scenario; with ``--instances N``, each load generator's own figures beside the merged ones."""
        scenarios = table(scenario_frame(self.run.per_second), units=SCENARIO_UNITS)
        if not self.record.instances:
            return scenarios
        return join(scenarios, table(instances_frame(self.record), "Each load generator (k6's own summary of its "
                                     "segment; the figures above are the whole test's)"))

    def scenario_figure(self) -> plt.Figure:
        return scenario_figure(self.run.per_second)

    def metrics_section(self) -> HTML:
        """Key figures, every Trend, the script's Counters/Rates/Gauges, checks, warnings."""
        warnings = (items("Warnings", self.record.warnings) if self.record.warnings
                    else note("No warnings recorded for this run."))
        return join(table(key_figures_shown(self.record), "Key figures"),
                    table(trend_frame(self.record), "Durations", units=dict.fromkeys(TREND_STATS, "ms")),
                    table(counter_shown(self.record), "Counters, rates and gauges"),
                    table(checks_frame(self.run.summary), "Checks", units={"pass rate": "%"}), warnings)

    def baseline_section(self) -> HTML:
        from hardening.analysis import baseline as baselines

        frame = baselines.comparison_frame(self.baseline)
        if frame.empty and self.baseline.verdict is not None:  # history given, but nothing earlier to compare
            return join(note(self.baseline.headline),
                        starts_here("History starts here: no earlier passing run of this environment, profile and "
                                    "script to compare with. The comparison appears from the next run on."))
        return join(note(self.baseline.headline), table(frame))

    def summary(self) -> RunReportSummary:
        status, sentence = verdict_text(self.record)
        return RunReportSummary(
            run_id=self.record.run_id, verdict=status, sentence=sentence,
            slo_table=slo_frame(self.record).to_dict("records"),
            baseline=BaselineSummary.of(self.baseline), per_second_rows=len(self.run.per_second))
