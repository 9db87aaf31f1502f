"""Rule-based recommendations on a comparison. Every threshold is a named constant (documented in
the README): a rule fires when its condition holds over the measured window.
"""

from __future__ import annotations

from typing import Any

EVICTIONS_MIN = 1                    # any key evicted in the window
FRAGMENTATION_RATIO = 1.5            # rss / used above this ...
FRAGMENTATION_MIN_BYTES = 100 << 20  # ... and at least 100 MiB of rss above used_memory
MEMORY_NEAR_MAX = 0.90               # used_memory >= 90 % of maxmemory
REJECTED_MIN = 1                     # any rejected connection in the window
BLOCKED_WARN_SHARE = 0.5             # blocked clients >= half of the connected clients: warning (>0: info)
SLOW_SHARE = 0.5                     # one command >= 50 % of the server's command time ...
SLOW_USEC_PER_CALL = 1000            # ... at >= 1 ms per call on average
SLOWLOG_DOMINANT_SHARE = 0.5         # or >= 50 % of >= 10 new slowlog entries are one command
SLOWLOG_DOMINANT_MIN = 10
MISS_RATIO_JUMP = 0.10               # window miss ratio >= 10 points above the ratio before ...
MISS_RATIO_MIN_LOOKUPS = 100         # ... over at least 100 lookups


def _rec(rule: str, severity: str, title: str, detail: str, threshold: str) -> dict[str, str]:
    return {"rule": rule, "severity": severity, "title": title, "detail": detail, "threshold": threshold}


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def recommendations(comparison: dict[str, Any]) -> list[dict[str, str]]:
    agg = comparison.get("aggregate") or {}
    if "error" in agg:
        return []
    out: list[dict[str, str]] = []
    counters, gauges, config = agg.get("counters", {}), agg.get("gauges", {}), agg.get("config", {})
    evicted = counters.get("evicted_keys", {}).get("delta", 0)
    if evicted >= EVICTIONS_MIN:
        out.append(_rec("evictions", "warning", f"{evicted:,} keys evicted during the load",
                        f"maxmemory-policy is {config.get('maxmemory-policy', '?')}: raise maxmemory, add TTLs "
                        "or shard the data set so that live keys are not evicted.", f">= {EVICTIONS_MIN} eviction"))
    used = gauges.get("used_memory", {}).get("after") or 0
    rss = gauges.get("used_memory_rss", {}).get("after") or 0
    ratio = gauges.get("mem_fragmentation_ratio", {}).get("after")
    if ratio and ratio > FRAGMENTATION_RATIO and rss - used >= FRAGMENTATION_MIN_BYTES:
        out.append(_rec("fragmentation", "warning", f"memory fragmentation ratio {ratio:.2f}",
                        f"{_mib(rss - used)} of resident memory is not used by data: enable activedefrag "
                        "or restart the replica/primary in a quiet hour.",
                        f"ratio > {FRAGMENTATION_RATIO} and >= {_mib(FRAGMENTATION_MIN_BYTES)} wasted"))
    maxmemory = int(config.get("maxmemory") or gauges.get("maxmemory", {}).get("after") or 0)
    if maxmemory and used >= MEMORY_NEAR_MAX * maxmemory:
        out.append(_rec("memory_near_max", "warning", f"used memory at {used / maxmemory:.0%} of maxmemory",
                        f"{_mib(used)} used of {_mib(maxmemory)}: evictions or OOM errors are next.",
                        f">= {MEMORY_NEAR_MAX:.0%} of maxmemory"))
    rejected = counters.get("rejected_connections", {}).get("delta", 0)
    if rejected >= REJECTED_MIN:
        out.append(_rec("rejected_connections", "warning", f"{rejected:,} connections rejected",
                        f"maxclients is {config.get('maxclients', '?')}: use a connection pool with a bound, "
                        "or raise maxclients.", f">= {REJECTED_MIN} rejected"))
    peaks = agg.get("peaks", {})
    blocked = peaks.get("blocked_clients") or 0
    connected = peaks.get("connected_clients") or 0
    if blocked:
        share = blocked / connected if connected else 1.0
        severity = "warning" if share >= BLOCKED_WARN_SHARE else "info"
        out.append(_rec("blocked_clients", severity, f"up to {blocked} blocked clients",
                        "clients waited in BLPOP/BRPOP/XREAD/WAIT; expected for queue workers, a problem when "
                        "producers fall behind.", f"> 0 (warning at >= {BLOCKED_WARN_SHARE:.0%} of connected)"))
    events = agg.get("latency_events", [])
    if events:
        worst = events[0]
        out.append(_rec("latency_events", "warning", f"{len(events)} latency event type(s), worst "
                        f"{worst['event']} at {worst['peak_ms']} ms",
                        "see the latency monitoring table; LATENCY DOCTOR on the server explains each event.",
                        ">= 1 event above latency-monitor-threshold in the window"))
    total_usec = sum(r["usec"] for r in agg.get("per_command", []) if not r["includes_tool_time"])
    for row in agg.get("per_command", []):
        if row["includes_tool_time"] or not total_usec:
            continue
        share = row["usec"] / total_usec
        if share >= SLOW_SHARE and (row["usec_per_call"] or 0) >= SLOW_USEC_PER_CALL:
            out.append(_rec("slow_command", "warning", f"{row['command']} takes {share:.0%} of command time",
                            f"{row['usec_per_call']:.0f} µs per call over {row['calls']:,} calls: avoid O(N) "
                            "commands on big keys (KEYS, SMEMBERS, HGETALL, LRANGE 0 -1), paginate with SCAN.",
                            f">= {SLOW_SHARE:.0%} of time and >= {SLOW_USEC_PER_CALL} µs/call"))
    slowlog = agg.get("slowlog") or {}
    by_cmd = slowlog.get("by_command") or []
    if slowlog.get("new_entries", 0) >= SLOWLOG_DOMINANT_MIN and by_cmd:
        top = max(by_cmd, key=lambda r: r["count"])
        if top["count"] / slowlog["new_entries"] >= SLOWLOG_DOMINANT_SHARE:
            out.append(_rec("slowlog_dominant", "warning", f"{top['command']} dominates the slowlog",
                            f"{top['count']} of {slowlog['new_entries']} new slow entries, max {top['max_us']:,} µs.",
                            f">= {SLOWLOG_DOMINANT_SHARE:.0%} of >= {SLOWLOG_DOMINANT_MIN} new entries"))
    if slowlog.get("lost_entries"):
        out.append(_rec("slowlog_lost", "info", f"{slowlog['lost_entries']} slowlog entries lost",
                        f"the slowlog ring buffer (slowlog-max-len {slowlog.get('max_len')}) overflowed during "
                        "the window: raise slowlog-max-len or slowlog-log-slower-than.", ">= 1 lost entry"))
    before, during = agg.get("hit_ratio_before"), agg.get("hit_ratio_window")
    lookups = counters.get("keyspace_hits", {}).get("delta", 0) + counters.get("keyspace_misses", {}).get("delta", 0)
    if before is not None and during is not None and lookups >= MISS_RATIO_MIN_LOOKUPS:
        jump = (1 - during) - (1 - before)
        if jump >= MISS_RATIO_JUMP:
            out.append(_rec("miss_ratio_jump", "warning", f"cache miss ratio rose to {1 - during:.0%}",
                            f"from {1 - before:.0%} before the load over {lookups:,} lookups: cold cache, "
                            "evictions or a key-naming change.",
                            f">= {MISS_RATIO_JUMP:.0%} points over >= {MISS_RATIO_MIN_LOOKUPS} lookups"))
    if agg.get("reset", {}).get("detected"):
        out.append(_rec("reset", "info", "counters were reset during the window",
                        "; ".join(agg["reset"]["reasons"][:3]) + ": deltas count from the reset (lower bounds).",
                        "run_id changed or a counter went down"))
    return out
