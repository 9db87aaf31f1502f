"""Redis Cluster: find every primary from any seed node, and merge per-node results.

Discovery sends ``INFO cluster`` first and ``CLUSTER NODES`` only when cluster mode is on, so a
standalone server never sees a failing CLUSTER command (which would count as an application error).
Merging: counters and gauges are summed, histogram buckets are summed, percentiles are recomputed from
the merged buckets (never averaged), ratios are recomputed from summed numerators and denominators.
"""

from __future__ import annotations

from typing import Any

from hardening.redisobs.connection import ToolClient, decode, node_url
from hardening.redisobs.info import parse_info

__all__ = ["merge_histograms", "node_url", "primaries", "sum_dicts"]


def primaries(client: ToolClient) -> list[str] | None:
    """``host:port`` of every connected primary, or None when the node is not in cluster mode."""
    info = parse_info(client.call("INFO", "cluster"))
    if info.get("cluster", {}).get("cluster_enabled") != 1:
        return None
    found = []
    for line in decode(client.call("CLUSTER", "NODES")).splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2].split(",")
        if "master" not in flags or "fail" in flags or "noaddr" in flags or "handshake" in flags:
            continue
        address = fields[1].split("@")[0].split(",")[0]
        if address.startswith(":"):           # a lone node may report ":port": it is the seed itself
            address = client.address
        found.append(address)
    return sorted(set(found))


def merge_histograms(histograms: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Sum per-bucket (not cumulative) {command: {"calls", "buckets": {upper: count}}} across nodes."""
    out: dict[str, dict[str, Any]] = {}
    for hist in histograms:
        for cmd, body in hist.items():
            slot = out.setdefault(cmd, {"calls": 0, "buckets": {}})
            slot["calls"] += body["calls"]
            for upper, count in body["buckets"].items():
                slot["buckets"][upper] = slot["buckets"].get(upper, 0) + count
    return out


def sum_dicts(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum numeric leaves of same-shaped dicts (missing keys count as 0)."""
    out: dict[str, Any] = {}
    for d in dicts:
        for key, value in d.items():
            if isinstance(value, dict):
                out[key] = sum_dicts([out.get(key, {}), value])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
    return out
