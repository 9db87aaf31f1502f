"""The console summary block printed after a load test, in the seed's layout.

Every line comes from the run's own metrics: the SLO lines from the results, the custom metrics
(the script's own Counters, Rates, Gauges and Trends) from k6's summary.
"""

from __future__ import annotations

from hardening.loadtest.slo import format_value
from hardening.record.model import COUNTER, GAUGE, RATE, TREND, RunRecord, RunStatus, SloResult, SloStatus

RULE = "=" * 50


def _num(value, fmt: str = "{:,.0f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _target(metric_type: str, aggregation: str, target: float) -> str:
    if metric_type == RATE:
        return f"{target * 100:g}%"
    if metric_type == TREND:
        return f"{target:g} ms"
    return f"{target:g}/s" if aggregation == "rate" else f"{target:g}"


def slo_line(r: SloResult) -> str:
    """``  http_req_duration{scenario:spike} p(95): 123.40 ms ✅ (SLO: <800 ms)``"""
    mark = {SloStatus.PASS: "✅", SloStatus.FAIL: "❌", SloStatus.NO_DATA: "❌ (no data)"}[r.status]
    shown = "n/a" if r.observed is None else format_value(r.metric_type, r.aggregation, r.observed)
    origin = " [script]" if r.origin == "script" else ""
    return f"  {r.key} {r.aggregation}: {shown} {mark} (SLO: {r.op}{_target(r.metric_type, r.aggregation, r.target)}){origin}"


def custom_metric_line(name: str, kind: str, values: dict[str, float]) -> str:
    """One custom metric with its unit: Trend p95/avg in ms, Rate in %, Counter count and per second."""
    if kind == TREND:
        return (f"  {name}: avg {_num(values.get('avg'), '{:,.2f} ms')}, p95 "
                f"{_num(values.get('p(95)'), '{:,.2f} ms')}")
    if kind == RATE:
        return f"  {name}: {_num(values.get('value') if values.get('value') is None else values['value'] * 100, '{:.2f}%')}"
    if kind == COUNTER:
        return f"  {name}: {_num(values.get('count'))} ({_num(values.get('rate'), '{:,.2f}/s')})"
    if kind == GAUGE:
        return f"  {name}: {_num(values.get('value'), '{:,.4g}')}"
    return f"  {name}: {values}"


def console_summary(run: RunRecord) -> str:
    m = run.metrics
    dur = m.http_req_duration or {}
    custom = [custom_metric_line(name, c.type, c.values) for name, c in sorted(m.custom.items())]
    lines = [
        "",
        "K6 Load Test Summary",
        RULE,
        "",
        "SLO Compliance:",
        *[slo_line(r) for r in run.slo_results],
        "",
        "Performance Metrics:",
        f"  Total Requests: {_num(m.requests)}",
        f"  Requests/sec: {_num(m.rps, '{:,.2f} req/s')}",
        f"  Error rate: {_num(None if m.error_rate is None else m.error_rate * 100, '{:.2f}%')}",
        f"  Avg Response: {_num(dur.get('avg'), '{:,.2f} ms')}",
        f"  p95 Response: {_num(dur.get('p(95)'), '{:,.2f} ms')}",
        f"  p99 Response: {_num(dur.get('p(99)'), '{:,.2f} ms')}",
        *(["", "Custom Metrics:", *custom] if custom else []),
        "",
        RULE,
        {RunStatus.PASS: "✅ SLO PASS", RunStatus.FAIL: "❌ SLO FAIL"}.get(
            run.status, f"⚠️ RUN {run.status.upper()} (k6: {run.k6.exit_meaning})"
        ),
        RULE,
    ]
    return "\n".join(lines)
