"""Counters between two readings, done right: client monotonic time, the tool's own commands
subtracted, resets detected and never a negative delta.

A *point* is one reading of one node: ``{"t", "mono", "run_id", "counters", "gauges", "cmd", "errors",
"tool_before", "tool_after"}`` (``tool_before``/``tool_after``: the collector's commands sent on that node
just before / after the INFO that produced the point). A *step* compares two consecutive points.

A step is a reset when the ``run_id`` changed (restart) or any counter went down (``CONFIG RESETSTAT``
or restart): its deltas are then the current values (what accumulated since the reset), a lower bound.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hardening.redisobs.info import flat

COUNTERS = (
    "total_commands_processed", "total_connections_received", "rejected_connections", "keyspace_hits",
    "keyspace_misses", "evicted_keys", "expired_keys", "total_error_replies", "total_net_input_bytes",
    "total_net_output_bytes",
)
GAUGES = (
    "connected_clients", "blocked_clients", "used_memory", "used_memory_rss", "used_memory_peak",
    "mem_fragmentation_ratio", "maxmemory", "instantaneous_ops_per_sec",
)


def point_from_info(info: dict[str, dict[str, Any]], t: float, mono: float,
                    tool_before: dict[str, int] | None = None,
                    tool_after: dict[str, int] | None = None) -> dict[str, Any]:
    f = flat(info)
    return {
        "t": t, "mono": mono, "run_id": f.get("run_id"),
        "counters": {k: int(f[k]) for k in COUNTERS if isinstance(f.get(k), (int, float))},
        "gauges": {k: f[k] for k in GAUGES if isinstance(f.get(k), (int, float))},
        "cmd": {name: [int(v.get("calls", 0)), int(v.get("usec", 0)), int(v.get("failed_calls", 0)),
                       int(v.get("rejected_calls", 0))]
                for name, v in info.get("commandstats", {}).items()},
        "errors": {name: int(v.get("count", 0)) for name, v in info.get("errorstats", {}).items()},
        "tool_before": dict(tool_before or {}), "tool_after": dict(tool_after or {}),
    }


def point_from_snapshot(node: dict[str, Any]) -> dict[str, Any] | None:
    if "info" not in node:
        return None
    tool = node.get("tool", {})
    return point_from_info(node["info"], node["t"], node["mono"], tool.get("before_info"), tool.get("after_info"))


def tool_name_for(name: str, cmd_names: set[str]) -> str:
    """Map the tool's ``config|get`` onto ``config`` on servers (< 7.0) without subcommand stats."""
    if name in cmd_names or "|" not in name:
        return name
    return name.split("|")[0]


@dataclass
class Window:
    seconds: float = 0.0
    steps: int = 0
    resets: list[str] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    tool_commands: int = 0
    cmd_calls: Counter = field(default_factory=Counter)
    cmd_usec: Counter = field(default_factory=Counter)
    cmd_failed: Counter = field(default_factory=Counter)
    cmd_rejected: Counter = field(default_factory=Counter)
    cmd_tool: Counter = field(default_factory=Counter)

    @property
    def app_commands(self) -> int:
        return self.counters["total_commands_processed"]

    @property
    def ops_per_sec(self) -> float | None:
        return self.app_commands / self.seconds if self.seconds > 0 else None


def is_reset(prev: dict[str, Any], cur: dict[str, Any]) -> str | None:
    if prev.get("run_id") and cur.get("run_id") and prev["run_id"] != cur["run_id"]:
        return "restart (run_id changed)"
    dropped = [k for k, v in cur["counters"].items() if v < prev["counters"].get(k, 0)]
    dropped += [f"cmdstat_{k}" for k, v in cur["cmd"].items() if v[0] < prev["cmd"].get(k, [0])[0]]
    if dropped:
        return f"counters dropped ({', '.join(sorted(dropped)[:4])}): CONFIG RESETSTAT or restart"
    return None


def add_step(win: Window, prev: dict[str, Any], cur: dict[str, Any]) -> None:
    reason = is_reset(prev, cur)
    if reason:
        win.resets.append(f"{reason} between t={prev['t']:.3f} and t={cur['t']:.3f}")
    tool = Counter(prev.get("tool_after", {})) + Counter(cur.get("tool_before", {})) + Counter({"info": 1})
    tool_total = sum(tool.values())
    for key, value in cur["counters"].items():
        delta = value if reason else value - prev["counters"].get(key, 0)
        if key == "total_commands_processed":
            delta -= tool_total
        win.counters[key] += max(0, delta)
    for key, value in cur["errors"].items():
        win.errors[key] += max(0, value if reason else value - prev["errors"].get(key, 0))
    names = set(cur["cmd"])
    tool_by_cmd = Counter()
    for name, n in tool.items():
        tool_by_cmd[tool_name_for(name, names)] += n
    for name, (calls, usec, failed, rejected) in cur["cmd"].items():
        p = [0, 0, 0, 0] if reason else prev["cmd"].get(name, [0, 0, 0, 0])
        win.cmd_calls[name] += max(0, calls - p[0] - tool_by_cmd[name])
        win.cmd_usec[name] += max(0, usec - p[1])
        win.cmd_failed[name] += max(0, failed - p[2])
        win.cmd_rejected[name] += max(0, rejected - p[3])
        win.cmd_tool[name] += tool_by_cmd[name]
    win.tool_commands += tool_total
    win.seconds += max(0.0, cur["mono"] - prev["mono"])
    win.steps += 1


def window(points: list[dict[str, Any]]) -> Window:
    win = Window()
    for prev, cur in itertools.pairwise(points):
        add_step(win, prev, cur)
    return win


def hit_ratio(hits: float, misses: float) -> float | None:
    return hits / (hits + misses) if hits + misses > 0 else None
