"""Read a run's ``redis/`` folder for the Redis report, tolerating absent or partial files.

Files (issue 3): ``before.json`` / ``after.json`` (snapshots: ``{"nodes": [{"info": {section: {field}},
"latency": {"latest": [...]}, "slowlog": {"entries": [...]}, ...}]}``), ``timeline.jsonl`` (one JSON object
per sample, ``t`` = UTC epoch seconds), ``comparison.json`` and ``redis-observability-report.md``.
Anything missing yields empty tables and a note, never an exception: a report says "no Redis data".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from hardening.record.reader import RecordWarning

BEFORE_AFTER = (
    ("clients", "connected_clients", "Connected clients"),
    ("clients", "blocked_clients", "Blocked clients"),
    ("stats", "total_commands_processed", "Total commands"),
    ("stats", "instantaneous_ops_per_sec", "Ops/sec (instantaneous)"),
    ("stats", "total_connections_received", "Connections received"),
    ("stats", "rejected_connections", "Rejected connections"),
    ("stats", "keyspace_hits", "Keyspace hits"),
    ("stats", "keyspace_misses", "Keyspace misses"),
    ("stats", "evicted_keys", "Evicted keys"),
    ("stats", "total_error_replies", "Error replies"),
    ("memory", "used_memory", "Used memory (bytes)"),
    ("memory", "used_memory_peak", "Peak memory (bytes)"),
    ("memory", "mem_fragmentation_ratio", "Fragmentation ratio"),
)
TIMELINE_SERIES = (
    ("ops_per_sec", "ops/s"), ("instantaneous_ops_per_sec", "ops/s (INFO)"), ("connected_clients", "clients"),
    ("blocked_clients", "blocked"), ("used_memory", "memory bytes"), ("mem_fragmentation_ratio", "fragmentation"),
    ("hit_ratio", "hit ratio"),
)


@dataclass
class RedisData:
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    timeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: list[str] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return bool(self.before or self.after or self.comparison or not self.timeline.empty)


def _json(path: Path, missing: list[str]) -> dict[str, Any]:
    if not path.is_file():
        missing.append(path.name)
        return {}
    try:
        data = orjson.loads(path.read_bytes())
        return data if isinstance(data, dict) else {}
    except ValueError as exc:
        warnings.warn(f"{path}: unreadable ({exc}); shown as missing", RecordWarning, stacklevel=2)
        missing.append(path.name)
        return {}


def read_timeline(path: Path) -> pd.DataFrame:
    """timeline.jsonl -> flat DataFrame with a UTC ``time`` column (bad lines skipped)."""
    if not path.is_file():
        return pd.DataFrame()
    rows = []
    for line in path.read_bytes().splitlines():
        try:
            obj = orjson.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "t" in obj:
            rows.append(obj)
    if not rows:
        return pd.DataFrame()
    df = pd.json_normalize(rows, sep=".")
    df["time"] = pd.to_datetime(df["t"], unit="s", utc=True)
    for col, _ in TIMELINE_SERIES:  # promote nested fields (e.g. "stats.connected_clients") to short names
        if col not in df:
            nested = [c for c in df.columns if c.endswith("." + col)]
            if nested:
                df[col] = df[nested[0]]
    return df.sort_values("time").reset_index(drop=True)


def load_redis(redis_dir: Path | None) -> RedisData:
    if redis_dir is None or not Path(redis_dir).is_dir():
        return RedisData(missing=["redis/"])
    d = Path(redis_dir)
    missing: list[str] = []
    data = RedisData(before=_json(d / "before.json", missing), after=_json(d / "after.json", missing),
                     comparison=_json(d / "comparison.json", missing), missing=missing)
    data.timeline = read_timeline(d / "timeline.jsonl")
    if data.timeline.empty:
        missing.append("timeline.jsonl")
    return data


def _nodes(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = snapshot.get("nodes")
    if isinstance(nodes, list):
        return [n for n in nodes if isinstance(n, dict)]
    return [snapshot] if "info" in snapshot else []


def _info_value(snapshot: dict[str, Any], section: str, key: str) -> float | None:
    """The field summed over nodes (ratios: the maximum), None when no node has it."""
    values = []
    for node in _nodes(snapshot):
        v = ((node.get("info") or {}).get(section) or {}).get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            values.append(float(v))
    if not values:
        return None
    return max(values) if "ratio" in key else sum(values)


def aggregate(data: RedisData) -> dict[str, Any]:
    """``comparison.json``'s aggregate over all nodes (empty when the comparison is absent)."""
    agg = data.comparison.get("aggregate")
    return agg if isinstance(agg, dict) else {}


def before_after(data: RedisData) -> pd.DataFrame:
    """Before / after / delta per figure: from comparison.json (tool commands excluded), else the snapshots."""
    agg = aggregate(data)
    if agg.get("counters") or agg.get("gauges"):
        rows = [{"metric": name, **{k: v.get(k) for k in ("before", "after", "delta")}}
                for part in ("gauges", "counters") for name, v in (agg.get(part) or {}).items() if isinstance(v, dict)]
        if agg.get("ops_per_sec") is not None:
            rows.append({"metric": "ops_per_sec (window average, app only)", "before": None, "after": None,
                         "delta": agg["ops_per_sec"]})
        if agg.get("hit_ratio_window") is not None:
            rows.append({"metric": "hit_ratio (window)", "before": agg.get("hit_ratio_before"), "after": None,
                         "delta": agg["hit_ratio_window"]})
        return pd.DataFrame(rows, columns=["metric", "before", "after", "delta"])
    rows = []
    for section, key, label in BEFORE_AFTER:
        b, a = _info_value(data.before, section, key), _info_value(data.after, section, key)
        if b is None and a is None:
            continue
        rows.append({"metric": label, "before": b, "after": a,
                     "delta": a - b if a is not None and b is not None else None})
    return pd.DataFrame(rows, columns=["metric", "before", "after", "delta"])


COMMAND_COLUMNS = ["command", "calls", "usec_per_call", "share_of_time", "p50_us_le", "p99_us_le", "failed_calls"]


def command_latency(data: RedisData) -> pd.DataFrame:
    """Per-command calls and µs/call in the window: Δusec / Δcalls of commandstats (after − before)."""
    per_command = aggregate(data).get("per_command")
    if isinstance(per_command, list) and per_command:
        df = pd.DataFrame(per_command)
        return df.reindex(columns=[c for c in COMMAND_COLUMNS if c in df.columns])
    before: dict[str, dict[str, float]] = {}
    after: dict[str, dict[str, float]] = {}
    for snap, dest in ((data.before, before), (data.after, after)):
        for node in _nodes(snap):
            for cmd, st in ((node.get("info") or {}).get("commandstats") or {}).items():
                slot = dest.setdefault(cmd, {"calls": 0.0, "usec": 0.0})
                slot["calls"] += float(st.get("calls", 0) or 0)
                slot["usec"] += float(st.get("usec", 0) or 0)
    rows = []
    for cmd, st in after.items():
        b = before.get(cmd, {"calls": 0.0, "usec": 0.0})
        calls, usec = st["calls"] - b["calls"], st["usec"] - b["usec"]
        if calls <= 0 or usec < 0:  # no calls in the window, or counters reset: never a negative delta
            continue
        rows.append({"command": cmd, "calls": int(calls), "usec_per_call": usec / calls, "total_ms": usec / 1000})
    df = pd.DataFrame(rows, columns=["command", "calls", "usec_per_call", "total_ms"])
    return df.sort_values("total_ms", ascending=False).reset_index(drop=True)


def latency_events(data: RedisData) -> pd.DataFrame:
    agg = aggregate(data)
    if "latency_events" in agg:
        cols = ["event", "node", "samples_in_window", "peak_ms", "peak_time", "all_time_max_ms"]
        return pd.DataFrame(agg.get("latency_events") or [], columns=cols)
    rows = []
    for node in _nodes(data.after):
        for ev in (node.get("latency") or {}).get("latest") or []:
            rows.append({"node": node.get("address"), "event": ev.get("event"), "latest_ms": ev.get("latest_ms"),
                         "max_ms": ev.get("max_ms"),
                         "time": pd.to_datetime(ev.get("time"), unit="s", utc=True) if ev.get("time") else None})
    return pd.DataFrame(rows, columns=["node", "event", "latest_ms", "max_ms", "time"])


def slowlog(data: RedisData) -> pd.DataFrame:
    """Slowlog entries new since the before snapshot (already redacted by the collector), slowest first."""
    log = aggregate(data).get("slowlog")
    if isinstance(log, dict):
        rows = [{"id": e.get("id"), "duration_us": e.get("duration_us"), "command": e.get("command"),
                 "args": e.get("arg_count"), "time": pd.to_datetime(e.get("time"), unit="s", utc=True)
                 if e.get("time") else None, "node": e.get("node")} for e in log.get("top") or []]
        return pd.DataFrame(rows, columns=["id", "duration_us", "command", "args", "time", "node"])
    before_max = {n.get("address"): (n.get("slowlog") or {}).get("max_id") for n in _nodes(data.before)}
    rows = []
    for node in _nodes(data.after):
        floor = before_max.get(node.get("address"))
        for e in (node.get("slowlog") or {}).get("entries") or []:
            if e.get("tool") or (floor is not None and e.get("id", 0) <= floor):
                continue
            rows.append({"id": e.get("id"), "duration_us": e.get("duration_us"), "command": e.get("command"),
                         "args": e.get("arg_count"),
                         "time": pd.to_datetime(e.get("time"), unit="s", utc=True) if e.get("time") else None,
                         "client": e.get("client")})
    df = pd.DataFrame(rows, columns=["id", "duration_us", "command", "args", "time", "client"])
    return df.sort_values("duration_us", ascending=False).reset_index(drop=True)


def slowlog_facts(data: RedisData) -> str:
    log = aggregate(data).get("slowlog")
    if not isinstance(log, dict):
        return "Slowlog: not read in this run."
    return (f"Slowlog: {log.get('new_entries', 0)} new entries in the window, {log.get('lost_entries', 0)} lost"
            f"{' (at least)' if log.get('lost_is_lower_bound') else ''}; {log.get('tool_entries_excluded', 0)} "
            "entries of the tool itself excluded; arguments are redacted.")


def recommendations(data: RedisData) -> pd.DataFrame:
    rows = []
    for r in data.comparison.get("recommendations") or []:
        if isinstance(r, dict):
            rows.append({"severity": r.get("severity"), "title": r.get("title"), "detail": r.get("detail"),
                         "rule": r.get("rule"), "threshold": r.get("threshold")})
        else:
            rows.append({"severity": None, "title": str(r), "detail": None, "rule": None, "threshold": None})
    return pd.DataFrame(rows, columns=["severity", "title", "detail", "rule", "threshold"])


def server_label(data: RedisData) -> str:
    server = data.comparison.get("server") or data.after.get("server") or data.before.get("server") or {}
    if isinstance(server, dict):
        name = server.get("kind") or server.get("name") or server.get("server_name") or "redis"
        version = server.get("version") or server.get("valkey_version") or server.get("redis_version") or "?"
        mode = data.comparison.get("mode") or data.after.get("mode") or data.before.get("mode") or "standalone"
        return f"{name} {version} ({mode})"
    return str(server)


def redis_trends(runs: pd.DataFrame, top_commands: int = 6) -> pd.DataFrame:
    """Per run with Redis data: memory growth, clients, slowlog/latency-event counts, µs per call per command.

    Reads each run's ``redis/comparison.json`` (only for runs that have one), so the run loader stays fast.
    """
    rows = []
    for run_id, path in zip(runs["run_id"], runs["path"], strict=True):
        f = Path(path) / "redis" / "comparison.json"
        if not f.is_file():
            continue
        try:
            agg = (orjson.loads(f.read_bytes()) or {}).get("aggregate") or {}
        except ValueError:
            continue
        gauges = agg.get("gauges") or {}
        peaks = agg.get("peaks") or {}
        row: dict[str, Any] = {
            "run_id": run_id,
            "used_memory_growth": (gauges.get("used_memory") or {}).get("delta"),
            "peak_connected_clients": peaks.get("connected_clients"),
            "peak_blocked_clients": peaks.get("blocked_clients"),
            "slowlog_new_entries": (agg.get("slowlog") or {}).get("new_entries"),
            "latency_events": len(agg.get("latency_events") or []),
            "ops_per_sec": agg.get("ops_per_sec"),
        }
        for cmd in (agg.get("per_command") or [])[:top_commands]:
            if isinstance(cmd, dict) and cmd.get("command"):
                row[f"{cmd['command']} µs/call"] = cmd.get("usec_per_call")
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["run_id"])
    return runs[["run_id"]].merge(out, on="run_id", how="left")
