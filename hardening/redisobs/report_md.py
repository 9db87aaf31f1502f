"""The markdown report, in the seed's layout: Key Metrics Comparison (connections, commands and ops/s,
memory: Before/After/Delta), Latency Monitoring, Slowlog Analysis, Recommendations. Every string that
comes from the server is HTML-escaped and has ``|`` escaped for tables.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any


def esc(value: Any) -> str:
    return html.escape(str(value)).replace("|", "\\|").replace("`", "&#96;").replace("\n", " ")


def num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{round(value):,}" if isinstance(value, (int, float)) else esc(value)


def signed(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    text = num(value, digits)
    return text if value < 0 or text.startswith("-") else f"+{text}"


def size(value: Any) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{sign}{value:.2f} {unit}" if unit != "B" else f"{sign}{value:.0f} B"
        value /= 1024
    return "n/a"


def size_delta(value: Any) -> str:
    return "n/a" if value is None else ("+" if value >= 0 else "") + size(value)


def pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def render(comparison: dict[str, Any]) -> str:
    agg = comparison.get("aggregate") or {}
    server = comparison.get("server") or {}
    out = ["# Redis Observability Report", ""]
    out.append(f"- Server: {esc(server.get('kind', '?'))} {esc(server.get('version', '?'))} "
               f"({esc(comparison.get('mode') or '?')}, {len(comparison.get('nodes', []))} node(s))")
    out.append(f"- URL: `{esc(comparison.get('url'))}`")
    window = agg.get("window") or {}
    if window:
        start = datetime.fromtimestamp(window["start"], UTC).isoformat(timespec="seconds")
        end = datetime.fromtimestamp(window["end"], UTC).isoformat(timespec="seconds")
        out.append(f"- Window: {start} → {end} ({window['seconds']:.1f} s)")
    if agg.get("reset", {}).get("detected"):
        out.append("- **Reset detected**: " + esc("; ".join(agg["reset"]["reasons"][:3]))
                   + " — deltas count from the reset and are lower bounds")
    for err in comparison.get("errors", []):
        out.append(f"- **Error**: {esc(err)}")
    out.append("")
    if "error" in agg:
        out += ["## Key Metrics Comparison", "", f"Not available: {esc(agg['error'])}", ""]
        return "\n".join(out)
    c, g = agg["counters"], agg["gauges"]

    def crow(label: str, key: str) -> list[str]:
        row = c.get(key, {})
        return [label, num(row.get("before")), num(row.get("after")), signed(row.get("delta"))]

    def grow(label: str, key: str, fmt=num, dfmt=signed) -> list[str]:
        row = g.get(key, {})
        return [label, fmt(row.get("before")), fmt(row.get("after")), dfmt(row.get("delta"))]

    out += ["## Key Metrics Comparison", "", "### Connections"]
    out += table(["Metric", "Before", "After", "Delta"], [
        grow("Connected Clients", "connected_clients"), grow("Blocked Clients", "blocked_clients"),
        crow("Connections Received", "total_connections_received"),
        crow("Rejected Connections", "rejected_connections")])
    out += ["### Commands Processed"]
    ops_row = g.get("instantaneous_ops_per_sec", {})
    out += table(["Metric", "Before", "After", "Delta"], [
        crow("Total Commands (application)", "total_commands_processed"),
        ["Ops/sec (server, instantaneous)", num(ops_row.get("before")), num(ops_row.get("after")),
         signed(ops_row.get("delta"))],
        ["Ops/sec (window average)", "", "", num(agg.get("ops_per_sec"), 1)],
        crow("Error Replies", "total_error_replies"),
        crow("Keyspace Hits", "keyspace_hits"), crow("Keyspace Misses", "keyspace_misses"),
        ["Hit Ratio", pct(agg.get("hit_ratio_before")), pct(agg.get("hit_ratio_window")) + " (window)", ""]])
    out.append(f"Window deltas exclude the {agg.get('tool_commands', 0):,} commands sent by this tool.")
    out.append("")
    rows = []
    for r in agg.get("per_command", [])[:15]:
        rows.append([f"`{esc(r['command'])}`", num(r["calls"]), num(r["usec_per_call"], 1),
                     num(r.get("p50_us_le")), num(r.get("p99_us_le")), num(r.get("p99.9_us_le")),
                     pct(r["share_of_time"]) if r["share_of_time"] is not None else "(tool)"])
    if rows:
        out += ["### Commands in the window", ""]
        out += table(["Command", "Calls", "µs/call", "p50 ≤ µs", "p99 ≤ µs", "p99.9 ≤ µs", "Share of time"], rows)
        out.append(f"Percentiles: {esc(agg.get('latency_percentiles_source'))}.")
        out.append("")
    out += ["### Memory Usage"]
    out += table(["Metric", "Before", "After", "Delta"], [
        grow("Used Memory", "used_memory", size, size_delta), grow("RSS", "used_memory_rss", size, size_delta),
        grow("Peak Memory", "used_memory_peak", size, size_delta),
        grow("Fragmentation Ratio", "mem_fragmentation_ratio", lambda v: num(v, 2), lambda v: signed(v, 2)),
        crow("Evicted Keys", "evicted_keys"), crow("Expired Keys", "expired_keys")])
    out += _latency(agg) + _slowlog(agg) + _recommendations(comparison) + _timeline(comparison)
    out += _unavailable(comparison)
    return "\n".join(out)


def _latency(agg: dict[str, Any]) -> list[str]:
    out = ["## Latency Monitoring", ""]
    threshold = agg.get("config", {}).get("latency-monitor-threshold")
    events = agg.get("latency_events", [])
    if events:
        out += table(["Event", "Node", "Samples in window", "Peak (ms)", "Peak time", "All-time max (ms)"], [
            [f"`{esc(e['event'])}`", esc(e["node"]), num(e["samples_in_window"]), num(e["peak_ms"]),
             esc(e["peak_time"]), num(e.get("all_time_max_ms"))] for e in events])
    elif threshold in (0, "0"):
        out += ["⚠️ Latency monitor is off (latency-monitor-threshold 0): run "
                "`hardening redis enable-monitoring 100` before the load.", ""]
    elif threshold is None:
        out += ["⚠️ Latency monitor state unknown (CONFIG not readable); no events read.", ""]
    else:
        out += [f"✅ No latency events recorded (all events within {esc(threshold)}ms threshold)", ""]
    return out


def _slowlog(agg: dict[str, Any]) -> list[str]:
    out = ["## Slowlog Analysis", ""]
    log = agg.get("slowlog")
    if not log:
        return [*out, "Slowlog not readable on this server (see probes not available).", ""]
    out.append(f"{log['new_entries']:,} new entries in the window; {log['lost_entries']:,} lost"
               + (" (at least)" if log["lost_is_lower_bound"] else "")
               + f" (slowlog-max-len {log['max_len']}); {log['tool_entries_excluded']:,} entries of this tool excluded.")
    out.append("")
    if log["top"]:
        out += table(["ID", "Duration (μs)", "Command", "Args", "Node", "Timestamp"], [
            [num(e["id"]), num(e["duration_us"]), f"`{esc(e['command'])}" + (
                " " + esc(" ".join(e["args"][1 if ' ' not in e['command'] else 2:])) if e.get("args") else " ...")
             + "`", num(e["arg_count"]), esc(e["node"]),
             datetime.fromtimestamp(e["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")] for e in log["top"][:10]])
        out += table(["Command", "Entries", "Total (μs)", "Max (μs)"], [
            [f"`{esc(r['command'])}`", num(r["count"]), num(r["total_us"]), num(r["max_us"])]
            for r in log["by_command"][:10]])
    return out


def _recommendations(comparison: dict[str, Any]) -> list[str]:
    out = ["## Recommendations", ""]
    recs = comparison.get("recommendations", [])
    if not recs:
        return [*out, "✅ No issues detected - Redis is performing well under load", ""]
    for r in recs:
        icon = "⚠️" if r["severity"] == "warning" else "ℹ️"
        out.append(f"- {icon} **{esc(r['title'])}** — {esc(r['detail'])} _(rule `{esc(r['rule'])}`: "
                   f"{esc(r['threshold'])})_")
    return [*out, ""]


def _timeline(comparison: dict[str, Any]) -> list[str]:
    tl = comparison.get("timeline")
    if not tl:
        return []
    out = ["## Sampling During the Load", "",
           f"{tl['ok_samples']} of {tl['samples']} samples read; peak {num(tl['peak_ops_per_sec'], 1)} ops/s, "
           f"peak {num(tl['peak_connected_clients'])} connected clients, "
           f"peak used memory {size(tl['peak_used_memory'])}.", ""]
    if tl["gaps"]:
        out += table(["Gap start", "Gap end", "Seconds", "Samples missed", "Error"], [
            [esc(g["start_time"]), esc(g["end_time"]), num(g["seconds"], 1), num(g["samples"]), esc(g["error"])]
            for g in tl["gaps"]])
    return out


def _unavailable(comparison: dict[str, Any]) -> list[str]:
    rows = []
    for n in comparison.get("nodes", []):
        for part in ("before", "after"):
            for probe, reason in (n.get("unavailable", {}).get(part) or {}).items():
                rows.append([esc(n["address"]), part, f"`{esc(probe)}`", esc(reason)])
    if not rows:
        return []
    return ["## Probes Not Available", "", *table(["Node", "Snapshot", "Probe", "Why"], rows)]
