"""The console summary block printed after a load test, in the seed's layout."""

from __future__ import annotations

from hardening.loadtest.slo import RATE, TREND, format_value

RULE = "=" * 50


def _num(value, fmt: str = "{:,.0f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _target(metric_type: str, aggregation: str, target: float) -> str:
    if metric_type == RATE:
        return f"{target * 100:g}%"
    if metric_type == TREND:
        return f"{target:g}ms"
    return f"{target:g}/s" if aggregation == "rate" else f"{target:g}"


def slo_line(r: dict) -> str:
    """``  http_req_duration{scenario:spike} p(95): 123.40 ms ✅ (SLO: <800ms)``"""
    mark = {"pass": "✅", "fail": "❌", "no_data": "❌ (no data)"}.get(r["status"], "?")
    kind, agg = r.get("metric_type", TREND), r["aggregation"]
    tags = r.get("tags") or {}
    key = r["metric"] + ("{" + ",".join(f"{k}:{v}" for k, v in tags.items()) + "}" if tags else "")
    shown = "n/a" if r.get("observed") is None else format_value(kind, agg, r["observed"])
    return f"  {key} {agg}: {shown} {mark} (SLO: {r['op']}{_target(kind, agg, r['target'])})"


def console_summary(run: dict) -> str:
    m = run.get("metrics") or {}
    dur = m.get("http_req_duration") or {}
    lines = [
        "",
        "K6 Load Test Summary",
        RULE,
        "",
        "SLO Compliance:",
        *[slo_line(r) for r in run.get("slo_results", [])],
        "",
        "Performance Metrics:",
        f"  Total Requests: {_num(m.get('requests'))}",
        f"  Requests/sec: {_num(m.get('rps'), '{:,.2f}')}",
        f"  Avg Response: {_num(dur.get('avg'), '{:,.0f}ms')}",
        f"  p95 Response: {_num(dur.get('p(95)'), '{:,.0f}ms')}",
        f"  p99 Response: {_num(dur.get('p(99)'), '{:,.0f}ms')}",
        "",
        "Payment Metrics:",
        f"  Successful: {_num(m.get('payments_successful'))}",
        f"  Failed: {_num(m.get('payments_failed'))}",
        "",
        RULE,
        {"pass": "✅ SLO PASS", "fail": "❌ SLO FAIL"}.get(
            run["status"], f"⚠️ RUN {run['status'].upper()} (k6: {run['k6']['exit_meaning']})"
        ),
        RULE,
    ]
    return "\n".join(lines)
