"""Parse raw ``INFO ALL`` text into ``{section: {field: value}}`` (numbers as numbers).

commandstats, errorstats, latencystats and keyspace lines (``name:k=v,k=v``) become dicts keyed by the
name without its prefix (``cmdstat_set`` -> ``set``, ``errorstat_ERR`` -> ``ERR``).
"""

from __future__ import annotations

from typing import Any

PREFIXES = {"commandstats": "cmdstat_", "errorstats": "errorstat_", "latencystats": "latency_percentiles_usec_"}


def scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def kv_list(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep:
            out[key] = scalar(value)
    return out


def parse_info(raw: str | bytes) -> dict[str, dict[str, Any]]:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    sections: dict[str, dict[str, Any]] = {}
    section = "server"
    current = sections.setdefault(section, {})
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            section = line.lstrip("# ").strip().lower().replace(" ", "_")
            current = sections.setdefault(section, {})
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        prefix = PREFIXES.get(section)
        if prefix and key.startswith(prefix):
            current[key[len(prefix):]] = kv_list(value)
        elif section == "keyspace" or (section == "replication" and key.startswith("slave") and "=" in value):
            current[key] = kv_list(value)
        else:
            current[key] = scalar(value)
    return sections


def flat(info: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """All scalar fields of all sections in one dict (sections never share field names)."""
    out: dict[str, Any] = {}
    for name, fields in info.items():
        if name in PREFIXES or name == "keyspace":
            continue
        for key, value in fields.items():
            if not isinstance(value, dict):
                out[key] = value
    return out


def server_identity(info: dict[str, dict[str, Any]]) -> dict[str, Any]:
    server = info.get("server", {})
    valkey = server.get("server_name") == "valkey" or "valkey_version" in server
    version = str(server.get("valkey_version") if valkey else server.get("redis_version", "unknown"))
    cluster = info.get("cluster", {}).get("cluster_enabled") == 1
    return {
        "kind": "valkey" if valkey else "redis",
        "version": version,
        "redis_version": str(server.get("redis_version", "unknown")),
        "run_id": server.get("run_id"),
        "mode": "cluster" if cluster else str(server.get("redis_mode", "standalone")),
        "role": info.get("replication", {}).get("role"),
        "uptime_s": server.get("uptime_in_seconds"),
    }


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for p in version.split(".")[:3]:
        try:
            parts.append(int(p))
        except ValueError:
            parts.append(0)
    return tuple(parts)
