"""Before/after (and timeline) comparison of snapshots, per node and aggregated over a cluster.

Rates: Δcounters over Δ client monotonic time, the collector's own commands subtracted
(see ``metrics``). Window latency per command: Δusec / Δcalls. Window percentiles: from
``LATENCY HISTOGRAM`` bucket deltas (7.0+), merged across nodes by summing buckets; the value reported
for a percentile is the upper bound of the bucket that holds it. Slowlog: new-since-before by id; a gap
in ids is reported as lost entries. Latency events: samples inside the window, with their peak.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from hardening.redisobs.cluster import merge_histograms
from hardening.redisobs.metrics import GAUGES, Window, hit_ratio, point_from_snapshot, window
from hardening.redisobs.snapshot import iso

COMPARISON_SCHEMA = "hardening.redis.comparison/1"
PERCENTILES = (0.5, 0.9, 0.99, 0.999)


# ---------------------------------------------------------------- histograms
def bucket_counts(cumulative: dict[str, int]) -> dict[str, int]:
    """LATENCY HISTOGRAM buckets are cumulative; return the count that fell in each bucket."""
    out, prev = {}, 0
    for upper in sorted(cumulative, key=int):
        out[upper] = max(0, cumulative[upper] - prev)
        prev = max(prev, cumulative[upper])
    return out


def cumulative_at(cumulative: dict[str, int], upper: int) -> int:
    """Count of values <= ``upper`` known from a cumulative histogram (its last key <= upper)."""
    best = 0
    for key, count in cumulative.items():
        if int(key) <= upper:
            best = max(best, count)
    return best


def histogram_delta(before: dict[str, Any] | None, after: dict[str, Any], reset: bool) -> dict[str, Any]:
    """Per-bucket counts of the calls made between two LATENCY HISTOGRAM readings.

    Bucket keys move (the last key is the highest value seen, not a power of two), so the before
    reading is evaluated as a step function at each of the after reading's keys.
    """
    out: dict[str, Any] = {}
    for cmd, body in after.items():
        then = {} if reset or not before or cmd not in before else before[cmd]["buckets"]
        delta_cum, floor = {}, 0
        for upper in sorted(body["buckets"], key=int):
            floor = max(floor, body["buckets"][upper] - cumulative_at(then, int(upper)))
            delta_cum[upper] = floor
        delta = {b: c for b, c in bucket_counts(delta_cum).items() if c}
        calls = sum(delta.values())
        if calls:
            out[cmd] = {"calls": calls, "buckets": delta}
    return out


def percentile_upper(buckets: dict[str, int], p: float) -> int | None:
    total = sum(buckets.values())
    if not total:
        return None
    target, acc = math.ceil(p * total), 0
    for upper in sorted(buckets, key=int):
        acc += buckets[upper]
        if acc >= target:
            return int(upper)
    return None


def histogram_percentiles(hist: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {cmd: {"calls": body["calls"], **{f"p{p * 100:g}_us_le": percentile_upper(body["buckets"], p)
                                             for p in PERCENTILES}}
            for cmd, body in hist.items()}


# ---------------------------------------------------------------- per node
def timeline_points(timeline: list[dict[str, Any]], address: str) -> list[dict[str, Any]]:
    points = []
    for sample in timeline:
        if not sample.get("ok"):
            continue
        node = sample.get("nodes", {}).get(address) if "nodes" in sample else (
            sample if sample.get("node") == address else None)
        if node and node.get("ok", True) and "counters" in node:
            points.append(node)
    return points


def slowlog_window(before: dict[str, Any] | None, after: dict[str, Any] | None, restarted: bool,
                   before_t: float) -> dict[str, Any] | None:
    if not after:
        return None
    entries = after["entries"]
    first_id = None if restarted or not before else before.get("max_id")
    if restarted:
        new = entries
        expected = (after["max_id"] + 1) if after["max_id"] is not None else 0
        lower_bound = False
    elif first_id is not None and after["max_id"] is not None and after["max_id"] >= first_id:
        new = [e for e in entries if e["id"] > first_id]
        expected = after["max_id"] - first_id
        lower_bound = False
    else:   # empty slowlog before (or SLOWLOG RESET): new = logged since the before snapshot
        new = [e for e in entries if e["time"] >= math.floor(before_t)]
        expected = (max(e["id"] for e in new) - min(e["id"] for e in new) + 1) if new else 0
        lower_bound = True
    app = [e for e in new if not e.get("tool")]
    return {
        "new_entries": len(app), "tool_entries_excluded": len(new) - len(app),
        "lost_entries": max(0, expected - len(new)), "lost_is_lower_bound": lower_bound,
        "len_after": after["len"], "max_len": after["max_len"], "entries": app,
    }


def latency_window(after: dict[str, Any] | None, start: float, end: float) -> list[dict[str, Any]]:
    if not after:
        return []
    events = []
    latest = {row["event"]: row for row in after.get("latest", [])}
    for event, samples in after.get("history", {}).items():
        inside = [(ts, ms) for ts, ms in samples if math.floor(start) <= ts <= math.ceil(end)]
        if not inside:
            continue
        peak_ts, peak = max(inside, key=lambda s: s[1])
        events.append({"event": event, "samples_in_window": len(inside), "peak_ms": peak,
                       "peak_time": iso(peak_ts), "all_time_max_ms": latest.get(event, {}).get("max_ms")})
    return sorted(events, key=lambda e: -e["peak_ms"])


def gauge_table(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for key in GAUGES:
        b, a = before["gauges"].get(key), after["gauges"].get(key)
        out[key] = {"before": b, "after": a, "delta": (a - b) if a is not None and b is not None else None}
    return out


def node_comparison(before: dict[str, Any], after: dict[str, Any], timeline: list[dict[str, Any]]) -> dict:
    address = after.get("address") or before.get("address")
    out: dict[str, Any] = {"address": address, "server": after.get("server") or before.get("server"),
                           "unavailable": {"before": before.get("unavailable", {}),
                                           "after": after.get("unavailable", {})}}
    pb, pa = point_from_snapshot(before), point_from_snapshot(after)
    if pb is None or pa is None:
        out["error"] = before.get("error") or after.get("error") or "snapshot incomplete"
        return out
    mid = [p for p in timeline_points(timeline, address) if pb["mono"] < p["mono"] < pa["mono"]]
    win = window([pb, *mid, pa])
    restarted = bool(pb["run_id"] and pa["run_id"] and pb["run_id"] != pa["run_id"])
    reset = bool(win.resets)
    out.update(_window_fields(win, pb, pa))
    out["reset"] = {"detected": reset, "reasons": win.resets}
    if "histogram" in after and after["histogram"] is not None:
        out["histogram_delta"] = histogram_delta(before.get("histogram"), after["histogram"], reset)
    out["slowlog"] = slowlog_window(before.get("slowlog"), after.get("slowlog"), restarted, pb["t"])
    out["latency_events"] = latency_window(after.get("latency"), pb["t"], pa["t"])
    out["config"] = after.get("config") or before.get("config") or {}
    out["clients"] = {"before": before.get("clients"), "after": after.get("clients")}
    out["peaks"] = _peaks([pb, *mid, pa])
    return out


def _window_fields(win: Window, pb: dict[str, Any], pa: dict[str, Any]) -> dict[str, Any]:
    return {
        "window": {"start": pb["t"], "end": pa["t"], "start_time": iso(pb["t"]), "end_time": iso(pa["t"]),
                   "seconds": round(win.seconds, 6), "steps": win.steps},
        "counters": {k: {"before": pb["counters"].get(k), "after": pa["counters"].get(k), "delta": v}
                     for k, v in win.counters.items()},
        "gauges": gauge_table(pb, pa),
        "tool_commands": win.tool_commands,
        "app_commands": win.app_commands,
        "ops_per_sec": win.ops_per_sec,
        "cmd": {n: {"calls": win.cmd_calls[n], "usec": win.cmd_usec[n], "failed_calls": win.cmd_failed[n],
                    "rejected_calls": win.cmd_rejected[n], "tool_calls": win.cmd_tool[n]}
                for n in win.cmd_calls if win.cmd_calls[n] or (win.cmd_usec[n] and not win.cmd_tool[n])},
        "errors": dict(win.errors),
        "hit_ratio_before": hit_ratio(pb["counters"].get("keyspace_hits", 0),
                                      pb["counters"].get("keyspace_misses", 0)),
        "hit_ratio_window": hit_ratio(win.counters["keyspace_hits"], win.counters["keyspace_misses"]),
    }


def _peaks(points: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for key in ("connected_clients", "blocked_clients", "used_memory", "mem_fragmentation_ratio"):
        values = [p["gauges"][key] for p in points if key in p["gauges"]]
        out[key] = max(values) if values else None
    return out


# ---------------------------------------------------------------- aggregate
def aggregate(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [n for n in nodes if "error" not in n]
    if not ok:
        return {"error": "; ".join(f"{n['address']}: {n.get('error')}" for n in nodes)}
    agg: dict[str, Any] = {
        "window": {"start": min(n["window"]["start"] for n in ok), "end": max(n["window"]["end"] for n in ok),
                   "seconds": max(n["window"]["seconds"] for n in ok)},
        "app_commands": sum(n["app_commands"] for n in ok),
        "tool_commands": sum(n["tool_commands"] for n in ok),
        "ops_per_sec": sum(n["ops_per_sec"] or 0 for n in ok),
        "reset": {"detected": any(n["reset"]["detected"] for n in ok),
                  "reasons": [f"{n['address']}: {r}" for n in ok for r in n["reset"]["reasons"]]},
    }
    counters: dict[str, dict[str, Any]] = {}
    for n in ok:
        for key, row in n["counters"].items():
            slot = counters.setdefault(key, {"before": 0, "after": 0, "delta": 0})
            for part in ("before", "after", "delta"):
                slot[part] += row[part] or 0
    agg["counters"] = counters
    gauges: dict[str, dict[str, Any]] = {}
    for key in GAUGES:
        if key in ("mem_fragmentation_ratio", "maxmemory"):
            continue
        b = [n["gauges"][key]["before"] for n in ok if n["gauges"][key]["before"] is not None]
        a = [n["gauges"][key]["after"] for n in ok if n["gauges"][key]["after"] is not None]
        gauges[key] = {"before": sum(b) if b else None, "after": sum(a) if a else None,
                       "delta": (sum(a) - sum(b)) if a and b else None}
    for part in ("before", "after"):
        rss = gauges["used_memory_rss"][part]
        used = gauges["used_memory"][part]
        gauges.setdefault("mem_fragmentation_ratio", {})[part] = round(rss / used, 3) if rss and used else None
    frag = gauges["mem_fragmentation_ratio"]
    frag["delta"] = (frag["after"] - frag["before"]) if frag["after"] and frag["before"] else None
    maxmem = [n["gauges"]["maxmemory"]["after"] or 0 for n in ok]
    gauges["maxmemory"] = {"before": None, "after": sum(maxmem) if all(maxmem) else 0, "delta": None}
    agg["gauges"] = gauges
    cmd: dict[str, Counter] = {}
    for n in ok:
        for name, row in n["cmd"].items():
            cmd.setdefault(name, Counter()).update(row)
    agg["cmd"] = {k: dict(v) for k, v in cmd.items()}
    agg["errors"] = dict(sum((Counter(n["errors"]) for n in ok), Counter()))
    hits = counters.get("keyspace_hits", {})
    misses = counters.get("keyspace_misses", {})
    agg["hit_ratio_before"] = hit_ratio(hits.get("before", 0), misses.get("before", 0))
    agg["hit_ratio_window"] = hit_ratio(hits.get("delta", 0), misses.get("delta", 0))
    hists = [n["histogram_delta"] for n in ok if "histogram_delta" in n]
    if hists:
        agg["latency_percentiles"] = histogram_percentiles(merge_histograms(hists))
        agg["latency_percentiles_source"] = "LATENCY HISTOGRAM bucket deltas (bucket upper bounds, µs)"
    else:
        agg["latency_percentiles"] = {}
        agg["latency_percentiles_source"] = "; ".join(sorted({
            r for n in nodes for r in [n.get("unavailable", {}).get("after", {}).get("latency_histogram")] if r
        })) or "unavailable"
    agg["per_command"] = _per_command(agg["cmd"], agg["latency_percentiles"])
    agg["latency_events"] = sorted(
        [{**e, "node": n["address"]} for n in ok for e in n["latency_events"]], key=lambda e: -e["peak_ms"])
    agg["slowlog"] = _merge_slowlogs(ok)
    agg["peaks"] = {k: _sum_or_max(k, [n["peaks"][k] for n in ok]) for k in ok[0]["peaks"]}
    agg["config"] = ok[0]["config"]
    agg["clients"] = {part: _sum_clients([n["clients"][part] for n in ok]) for part in ("before", "after")}
    return agg


def _sum_or_max(key: str, values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return max(values) if key == "mem_fragmentation_ratio" else sum(values)


def _sum_clients(rows: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    rows = [r for r in rows if r]
    if not rows:
        return None
    return {k: sum(r.get(k, 0) for r in rows) for k in ("total", "blocked", "pubsub", "distinct_hosts")}


def _per_command(cmd: dict[str, dict[str, int]], pct: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    total_usec = sum(r["usec"] for name, r in cmd.items() if not r.get("tool_calls")) or 0
    rows = []
    for name, r in cmd.items():
        if not r["calls"]:
            continue
        row = {"command": name, "calls": r["calls"], "usec": r["usec"],
               "usec_per_call": round(r["usec"] / r["calls"], 3) if r["calls"] else None,
               "share_of_time": round(r["usec"] / total_usec, 4) if total_usec and not r.get("tool_calls") else None,
               "failed_calls": r.get("failed_calls", 0), "rejected_calls": r.get("rejected_calls", 0),
               "includes_tool_time": bool(r.get("tool_calls"))}
        row.update({k: v for k, v in pct.get(name, {}).items() if k != "calls"})
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["usec"], r["command"]))


def _merge_slowlogs(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    logs = [(n["address"], n["slowlog"]) for n in nodes if n.get("slowlog")]
    if not logs:
        return None
    entries = [{**e, "node": addr} for addr, log in logs for e in log["entries"]]
    by_cmd: dict[str, dict[str, Any]] = {}
    for e in entries:
        row = by_cmd.setdefault(e["command"], {"command": e["command"], "count": 0, "total_us": 0, "max_us": 0})
        row["count"] += 1
        row["total_us"] += e["duration_us"]
        row["max_us"] = max(row["max_us"], e["duration_us"])
    return {
        "new_entries": sum(log["new_entries"] for _, log in logs),
        "lost_entries": sum(log["lost_entries"] for _, log in logs),
        "lost_is_lower_bound": any(log["lost_is_lower_bound"] for _, log in logs),
        "tool_entries_excluded": sum(log["tool_entries_excluded"] for _, log in logs),
        "max_len": min(log["max_len"] for _, log in logs),
        "by_command": sorted(by_cmd.values(), key=lambda r: -r["total_us"]),
        "top": sorted(entries, key=lambda e: -e["duration_us"])[:20],
    }


# ---------------------------------------------------------------- timeline
def timeline_summary(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [s for s in timeline if s.get("ok")]
    gaps, open_gap = [], None
    for s in timeline:
        if not s.get("ok"):
            if open_gap is None:
                open_gap = {"start": s["t"], "end": s["t"], "samples": 0, "error": s.get("error")}
            open_gap["end"] = s["t"]
            open_gap["samples"] += 1
        elif open_gap is not None:
            gaps.append(open_gap)
            open_gap = None
    if open_gap is not None:
        gaps.append(open_gap)
    for g in gaps:
        g["seconds"] = round(g["end"] - g["start"], 3)
        g["start_time"], g["end_time"] = iso(g["start"]), iso(g["end"])

    def peak(key: str) -> Any:
        values = [s[key] for s in ok if s.get(key) is not None]
        return max(values) if values else None
    return {"samples": len(timeline), "ok_samples": len(ok), "gaps": gaps,
            "peak_ops_per_sec": peak("ops_per_sec"), "peak_connected_clients": peak("connected_clients"),
            "peak_blocked_clients": peak("blocked_clients"), "peak_used_memory": peak("used_memory"),
            "resets": [s["t"] for s in ok if s.get("reset")]}


# ---------------------------------------------------------------- entry point
def compare(before: dict[str, Any], after: dict[str, Any],
            timeline: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The comparison document (``RedisLayout.comparison``); recommendations are added by ``recommend``."""
    from hardening.redisobs.recommend import recommendations

    timeline = timeline or []
    before_nodes = {n["address"]: n for n in before.get("nodes", [])}
    after_nodes = {n["address"]: n for n in after.get("nodes", [])}
    nodes = []
    for address in sorted(set(before_nodes) | set(after_nodes)):
        b = before_nodes.get(address, {"address": address, "error": "not captured before"})
        a = after_nodes.get(address, {"address": address, "error": "not captured after"})
        nodes.append(node_comparison(b, a, timeline))
    result: dict[str, Any] = {
        "schema": COMPARISON_SCHEMA, "url": after.get("url") or before.get("url"),
        "mode": after.get("mode") or before.get("mode"),
        "server": after.get("server") or before.get("server"),
        "before_captured_at": before.get("captured_at"), "after_captured_at": after.get("captured_at"),
        "aggregate": aggregate(nodes) if nodes else {"error": "no nodes captured"},
        "nodes": nodes,
        "timeline": timeline_summary(timeline) if timeline else None,
        "errors": [e for e in (before.get("error"), after.get("error")) if e],
    }
    result["recommendations"] = recommendations(result)
    return result
