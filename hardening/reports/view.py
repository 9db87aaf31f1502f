"""HTML pieces the report notebooks display: verdict banner, tables, sentences, the JSON side file.

Every string that comes from outside (run records, k6 check names, Redis keys, URLs) goes through
``html.escape`` (tables through ``DataFrame.to_html(escape=True)``) and :func:`hardening.masking.mask`,
so a key named ``<script>alert(1)</script>`` shows as text and no secret reaches a report.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from IPython.display import HTML, display

from hardening import atomic
from hardening.masking import mask
from hardening.record.model import COUNTER, GAUGE, RATE, RunRecord, SloResult, SloStatus

SUMMARY_MIMETYPE = "application/vnd.hardening.summary+json"

STYLE = """<style>
.hz-banner{padding:14px 18px;border-radius:6px;margin:6px 0 12px;font:16px/1.4 system-ui,sans-serif;color:#fff}
.hz-banner h2{margin:0 0 4px;font-size:24px;color:#fff}
.hz-pass{background:#1a7f37}.hz-fail{background:#cf222e}.hz-other{background:#9a6700}
.hz-note{font:14px/1.5 system-ui,sans-serif;margin:6px 0}
table.hz{border-collapse:collapse;font:13px system-ui,sans-serif;margin:6px 0 14px}
table.hz th,table.hz td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
table.hz th{background:#f6f8fa}
</style>"""


def esc(value: Any) -> str:
    """Masked and HTML-escaped text of any value."""
    return html.escape(mask(str(value)), quote=True)


def style() -> HTML:
    return HTML(STYLE)


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def note(text: str) -> HTML:
    return HTML(f'<p class="hz-note">{esc(text)}</p>')


def table(df: pd.DataFrame, caption: str | None = None, max_rows: int = 60) -> HTML:
    """An escaped HTML table (values masked too); a note instead when ``df`` is empty."""
    if df is None or df.empty:
        return note(f"{caption}: no data" if caption else "no data")
    shown = df.head(max_rows).copy()
    for col in shown.columns:
        if isinstance(shown[col].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(shown[col]):
            shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown = shown.map(lambda v: mask(v) if isinstance(v, str) else v)
    shown.columns = [mask(str(c)) for c in shown.columns]
    body = shown.to_html(index=False, escape=True, classes="hz", na_rep="—", border=0,
                         float_format=lambda v: f"{v:,.3f}".rstrip("0").rstrip("."))
    head = f"<h4>{esc(caption)}</h4>" if caption else ""
    more = f'<p class="hz-note">… {len(df) - max_rows} more rows</p>' if len(df) > max_rows else ""
    return HTML(head + body + more)


# ---------------------------------------------------------------- one run


def failed_slos(record: RunRecord) -> list[SloResult]:
    return record.failed_slos


def verdict_text(record: RunRecord) -> tuple[str, str]:
    """(``PASS``/``FAIL``/..., one sentence saying which SLO failed and by how much)."""
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
            parts.append(f"{s.name}: observed {fmt(s.observed, 2)}, "
                         f"{fmt(abs(s.margin or 0.0), 2)} beyond target {fmt(s.target, 2)}")
    return status, f"{len(bad)} of {len(slos)} SLOs not met — " + "; ".join(parts)


def verdict_banner(record: RunRecord) -> HTML:
    status, sentence = verdict_text(record)
    cls = {"PASS": "hz-pass", "FAIL": "hz-fail"}.get(status, "hz-other")
    facts = (f"run {record.run_id} · environment {record.environment} · profile "
             f"{record.profile} · script {record.script} · branch {record.git.branch} · commit "
             f"{(record.git.commit or 'n/a')[:12]} · started {record.started_at} · "
             f"{fmt(record.duration_s)} s · target {record.target}")
    return HTML(f'{STYLE}<div class="hz-banner {cls}" id="verdict"><h2>Verdict: {esc(status)}</h2>'
                f"<div>{esc(sentence)}</div><div style=\"font-size:13px;opacity:.9\">{esc(facts)}</div></div>")


def slo_frame(record: RunRecord) -> pd.DataFrame:
    rows = [{"SLO": s.name, "origin": str(s.origin), "observed": s.observed, "target": s.target, "op": s.op,
             "margin": s.margin, "result": str(s.status).upper().replace("_", "-"), "k6 said failed": s.k6_failed}
            for s in record.slo_results]
    return pd.DataFrame(rows, columns=["SLO", "origin", "observed", "target", "op", "margin", "result",
                                       "k6 said failed"])


def key_metrics_frame(record: RunRecord) -> pd.DataFrame:
    m = record.metrics
    rows = [{"metric": k, "value": getattr(m, k)} for k in ("requests", "rps", "error_rate", "checks_rate",
                                                            "iterations", "vus_max")]
    return pd.DataFrame(rows, columns=["metric", "value"])


def trend_frame(record: RunRecord, summary: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every Trend metric of the run (http_req_duration first, then the script's own Trends) in ms."""
    stats = ("avg", "med", "p(90)", "p(95)", "p(99)", "max")
    rows = [{"metric": name, **{k: values.get(k) for k in stats}} for name, values in record.metrics.trends().items()]
    return pd.DataFrame(rows, columns=["metric", *stats])


def counter_frame(record: RunRecord) -> pd.DataFrame:
    """The script's own Counters, Rates and Gauges, each with its kind (Trends are in ``trend_frame``)."""
    rows = []
    for name, m in sorted(record.metrics.custom.items()):
        if m.type == COUNTER:
            rows.append({"metric": name, "kind": "counter", "value": m.values.get("count"), "rate": m.values.get("rate")})
        elif m.type in (RATE, GAUGE):
            rows.append({"metric": name, "kind": m.type, "value": m.values.get("value"), "rate": None})
    return pd.DataFrame(rows, columns=["metric", "kind", "value", "rate"])


def checks_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """Every k6 check with passes/fails, walking nested groups (names escaped when shown)."""
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

    walk(summary.get("root_group") or {}, "")
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
        "median per-second p95 (ms)": g["p95_ms"].median(),
        "worst per-second p95 (ms)": g["p95_ms"].max(),
        "worst per-second p99 (ms)": g["p99_ms"].max(),
    })
    out.insert(3, "error rate", out["errors"] / out["requests"].where(out["requests"] > 0))
    out = out.reset_index()
    return pd.concat([out[out["scenario"] != "all"], out[out["scenario"] == "all"]], ignore_index=True)


def warnings_html(record: RunRecord) -> HTML:
    items = record.warnings
    if not items:
        return note("No warnings recorded for this run.")
    return HTML("<h4>Warnings</h4><ul>" + "".join(f"<li>{esc(w)}</li>" for w in items) + "</ul>")


# ---------------------------------------------------------------- machine-readable output


def _default(obj: Any) -> Any:
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)


def emit(summary_path: str | os.PathLike[str] | None, data: dict[str, Any]) -> None:
    """Write ``data`` to the JSON side file (when a path is given) and display it with a custom mimetype.

    Tests and CI read the side file; the HTML ignores the mimetype, so nothing shows in the report.
    """
    payload = orjson.loads(orjson.dumps(data, default=_default, option=orjson.OPT_SERIALIZE_NUMPY
                                        | orjson.OPT_NON_STR_KEYS))
    if summary_path:
        dest = Path(summary_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(dest, orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    display({SUMMARY_MIMETYPE: payload}, raw=True)


# ---------------------------------------------------------------- history and deployments


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def history_banner(summary: dict[str, Any], filters: str, highlight_run: str = "") -> HTML:
    """Top of the SLO history: alert sentence, compliance, budget left, burn alert, change points."""
    fail = summary["failure_alert"]
    burn = summary["burn_alert"]
    budget = summary["error_budget"]
    firing = fail["firing"] or burn["firing"]
    cls = "hz-fail" if firing else "hz-pass"
    lines = [
        f"{summary['runs']} runs (filters: {filters}); {summary['skipped']} unreadable records skipped",
        f"compliance {_pct(summary['compliance'])} of runs passed; objective {_pct(budget['objective'])}",
        (f"error budget left over the last {budget['window']} runs: {_pct(budget['remaining'])} "
        f"({budget['bad']} bad runs of {fmt(budget['budget_runs'])} allowed)"),
        (f"burn rate {fmt(burn['short_burn'], 2)} over {burn['short_window']} runs, {fmt(burn['long_burn'], 2)} over "
        f"{burn['long_window']} runs — multi-window alert {'FIRING' if burn['firing'] else 'quiet'} "
        f"(factor {burn['factor']:g})"),
    ]
    for cp in summary.get("change_points") or []:
        rel = cp.get("relative_change")
        lines.append(f"change point in {cp['metric'].replace('http_req_duration_', '')} at run {cp['run_id']}: "
                     f"median {fmt(cp['before_median'])} → {fmt(cp['after_median'])} ms"
                     + (f" ({rel * 100:+.0f}%)" if rel is not None else ""))
    if highlight_run:
        lines.append(f"this run: {highlight_run}")
    body = "".join(f"<div>{esc(x)}</div>" for x in lines)
    return HTML(f'{STYLE}<div class="hz-banner {cls}" id="verdict"><h2>{esc(fail["text"])}</h2>{body}</div>')


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def dora_frame(metrics: Any) -> pd.DataFrame:
    m = metrics.to_dict() if hasattr(metrics, "to_dict") else dict(metrics)
    rows = [
        ("deployments (incl. rollbacks)", m["deployments"]), ("changes", m["changes"]),
        ("deployment frequency", f"{fmt(m['deploys_per_day'], 2)} per day ({fmt(m['deploys_per_week'], 1)} per week)"),
        ("change failure rate", f"{_pct(m['change_failure_rate'])} ({m['failed_changes']} of {m['changes']})"),
        ("rollbacks", f"{m['rollbacks']} ({_pct(m['rollback_rate'])} of changes)"),
        ("time to detect (median / p90)", f"{_dur(m['time_to_detect_s_median'])} / {_dur(m['time_to_detect_s_p90'])}"),
        ("time to roll back (median)", _dur(m["time_to_rollback_s_median"])),
        ("time to restore (median / p90)",
         f"{_dur(m['time_to_restore_s_median'])} / {_dur(m['time_to_restore_s_p90'])}"),
        ("lead time commit → green (median / p90)", f"{_dur(m['lead_time_s_median'])} / {_dur(m['lead_time_s_p90'])}"),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def dora_banner(metrics: Any) -> HTML:
    m = metrics.to_dict() if hasattr(metrics, "to_dict") else dict(metrics)
    cfr = m["change_failure_rate"]
    cls = "hz-pass" if cfr is not None and cfr <= 0.15 else "hz-fail" if cfr is not None else "hz-other"
    scope = f"environment {m['env'] or 'all'}" + (f", service {m['service']}" if m.get("service") else "")
    head = f"Change failure rate {_pct(cfr)} · {fmt(m['deploys_per_week'], 1)} deploys/week · {m['rollbacks']} rollbacks"
    return HTML(f'{STYLE}<div class="hz-banner {cls}" id="verdict"><h2>{esc(head)}</h2><div>{esc(scope)}; '
                f"{m['deployments']} deployments over {fmt(m['days'], 1)} days</div></div>")
