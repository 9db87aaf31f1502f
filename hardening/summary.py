"""The console summary block printed after a load test, in the seed's layout."""

from __future__ import annotations

RULE = "=" * 50


def _num(value, fmt: str = "{:,.0f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def slo_line(r: dict) -> str:
    mark = {"pass": "✅", "fail": "❌", "no_data": "❌ (no data)"}.get(r["status"], "?")
    observed = r.get("observed")
    if r.get("aggregation") == "rate":
        shown = "n/a" if observed is None else f"{observed * 100:.2f}%"
        target = f"{r['op']}{r['target'] * 100:g}%"
    else:
        unit = "ms" if r.get("metric_type") == "trend" else ""
        shown = "n/a" if observed is None else f"{observed:,.2f}{unit}"
        target = f"{r['op']}{r['target']:g}{unit}"
    return f"  {r['metric']} {r['aggregation']}: {shown} {mark} (SLO: {target})"


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
