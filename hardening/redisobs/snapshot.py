"""One snapshot of a server (or of every primary of a cluster), each probe failing alone.

A node snapshot holds: timestamps (``t`` wall clock UTC epoch seconds, ``mono`` client monotonic, both
at the moment of ``INFO ALL``), server identity, parsed ``INFO ALL``, ``LATENCY LATEST`` + ``HISTORY``,
``LATENCY HISTOGRAM`` (7.0+), ``SLOWLOG LEN`` + ``GET`` (redacted), ``CLIENT LIST`` summarized,
``MEMORY STATS``, selected ``CONFIG GET`` values, ``unavailable`` ({probe: why}) and ``tool`` (the
collector's own commands before and after its INFO, for rate corrections).

No probe is sent that is known to fail on the server (LATENCY HISTOGRAM before 7.0, multi-argument
CONFIG GET before 7.0, commands that ``COMMAND INFO`` says are renamed away): failed commands would add
to the server's error counters, which the tool must not pollute.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import redis

from hardening.masking import mask_url
from hardening.redisobs import cluster
from hardening.redisobs.connection import TOOL_CLIENT_NAME, ToolClient, decode, now_pair, split_urls
from hardening.redisobs.info import parse_info, server_identity, version_tuple
from hardening.redisobs.redact import client_fields, hash_id, slowlog_entry

SNAPSHOT_SCHEMA = "hardening.redis.snapshot/1"
CONFIG_PARAMS = (
    "maxmemory", "maxmemory-policy", "maxclients", "timeout", "hz", "appendonly", "io-threads",
    "latency-monitor-threshold", "latency-tracking", "slowlog-log-slower-than", "slowlog-max-len",
)
SLOWLOG_CAP = 1024
PROBED_COMMANDS = ("config", "latency", "slowlog", "memory", "client")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def why(exc: Exception) -> str:
    text = str(exc)
    low = text.lower()
    if low.startswith("unknown command"):
        return f"command not available (renamed or disabled): {text}"
    if "noperm" in low or "no permissions" in low:
        return f"not permitted for this user (ACL): {text}"
    return f"{type(exc).__name__}: {text}"


def pairs(flat: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(flat) - 1, 2):
        value = flat[i + 1]
        if isinstance(value, list) and len(value) % 2 == 0 and all(
                isinstance(v, bytes) for v in value[::2]):
            value = pairs(value)
        else:
            value = decode(value)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = float(value) if "." in value else int(value)
        out[decode(flat[i])] = value
    return out


def parse_histogram(reply: list[Any]) -> dict[str, dict[str, Any]]:
    """LATENCY HISTOGRAM (RESP2) -> {command: {"calls": n, "buckets": {upper_us: cumulative_count}}}."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(reply) - 1, 2):
        fields = reply[i + 1]
        calls, buckets = 0, {}
        for j in range(0, len(fields) - 1, 2):
            name = decode(fields[j])
            if name == "calls":
                calls = int(fields[j + 1])
            elif name == "histogram_usec":
                flat = fields[j + 1]
                buckets = {str(int(flat[k])): int(flat[k + 1]) for k in range(0, len(flat) - 1, 2)}
        out[decode(reply[i])] = {"calls": calls, "buckets": buckets}
    return out


def summarize_clients(raw: bytes | str) -> dict[str, Any]:
    text = decode(raw) if isinstance(raw, bytes) else raw
    flags: Counter[str] = Counter()
    hosts: Counter[str] = Counter()
    names: Counter[str] = Counter()
    total = blocked = pubsub = 0
    idle_max = age_max = qbuf_max = omem_max = mem_max = 0
    tool = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        f = client_fields(line)
        if f.get("name") == TOOL_CLIENT_NAME:
            tool += 1
            continue
        total += 1
        for flag in f.get("flags", ""):
            flags[flag] += 1
        if "b" in f.get("flags", ""):
            blocked += 1
        if int(f.get("sub", 0) or 0) or int(f.get("psub", 0) or 0):
            pubsub += 1
        hosts[hash_id(f.get("addr", "").rpartition(":")[0]) or "?"] += 1
        if f.get("name"):
            names[hash_id(f["name"]) or "?"] += 1
        idle_max = max(idle_max, int(f.get("idle", 0) or 0))
        age_max = max(age_max, int(f.get("age", 0) or 0))
        qbuf_max = max(qbuf_max, int(f.get("qbuf", 0) or 0))
        omem_max = max(omem_max, int(f.get("omem", 0) or 0))
        mem_max = max(mem_max, int(f.get("tot-mem", 0) or 0))
    return {
        "total": total, "tool_connections_excluded": tool, "blocked": blocked, "pubsub": pubsub,
        "flags": dict(flags), "distinct_hosts": len(hosts), "top_hosts": hosts.most_common(5),
        "named": sum(names.values()), "top_names": names.most_common(5), "idle_max_s": idle_max,
        "age_max_s": age_max, "qbuf_max": qbuf_max, "omem_max": omem_max, "tot_mem_max": mem_max,
    }


class NodeProbe:
    """Runs the probes for one node, recording failures instead of raising."""

    def __init__(self, client: ToolClient, include_args: bool, slowlog_limit: int | None) -> None:
        self.client = client
        self.include_args = include_args
        self.slowlog_limit = slowlog_limit
        self.snap: dict[str, Any] = {"address": client.address, "unavailable": {}, "probe_ms": {}}

    def probe(self, name: str, fn) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        except redis.ResponseError as exc:
            self.snap["unavailable"][name] = why(exc)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self.snap["unavailable"][name] = f"connection lost: {type(exc).__name__}: {exc}"
        finally:
            self.snap["probe_ms"][name] = round((time.perf_counter() - start) * 1000, 3)
        return None

    def run(self) -> dict[str, Any]:
        client, snap = self.client, self.snap
        sent_start = Counter(client.sent)
        w0, m0 = now_pair()
        try:
            raw = client.call("INFO", "ALL")
        except (redis.RedisError, OSError) as exc:
            snap["error"] = why(exc)
            snap["t"], snap["mono"] = w0, m0
            return snap
        w1, m1 = now_pair()
        snap["t"], snap["mono"] = (w0 + w1) / 2, (m0 + m1) / 2
        snap["time"] = iso(snap["t"])
        before_info = Counter(client.sent) - sent_start - Counter({"info": 1})
        sent_after_info = Counter(client.sent)
        info = parse_info(raw)
        snap["server"] = server_identity(info)
        snap["info"] = info
        modern = version_tuple(snap["server"]["redis_version"]) >= (7, 0)
        present = self.probe("command_info", lambda: client.call("COMMAND", "INFO", *PROBED_COMMANDS))
        missing = {n for n, row in zip(PROBED_COMMANDS, present or [], strict=False) if row is None}
        for name in sorted(missing):
            snap["unavailable"][name] = "command not available on this server (renamed or disabled)"

        if "config" not in missing:
            snap["config"] = self.probe("config", lambda: self.config(modern))
        if "latency" not in missing:
            snap["latency"] = self.probe("latency", self.latency)
            if modern:
                snap["histogram"] = self.probe(
                    "latency_histogram", lambda: parse_histogram(client.call("LATENCY", "HISTOGRAM")))
            else:
                snap["unavailable"]["latency_histogram"] = (
                    f"LATENCY HISTOGRAM needs Redis 7.0+ (server is {snap['server']['redis_version']})")
        if "slowlog" not in missing:
            snap["slowlog"] = self.probe("slowlog", lambda: self.slowlog(snap.get("config") or {}))
        if "client" not in missing:
            snap["clients"] = self.probe("client_list", lambda: summarize_clients(client.call("CLIENT", "LIST")))
        if "memory" not in missing:
            snap["memory_stats"] = self.probe("memory_stats", lambda: pairs(client.call("MEMORY", "STATS")))
        after_info = Counter(client.sent) - sent_after_info
        snap["tool"] = {"before_info": dict(before_info), "after_info": dict(after_info)}
        return snap

    def config(self, modern: bool) -> dict[str, Any]:
        if modern:
            return pairs(self.client.call("CONFIG", "GET", *CONFIG_PARAMS))
        out: dict[str, Any] = {}
        for param in CONFIG_PARAMS:      # 6.2 takes one pattern per CONFIG GET
            out.update(pairs(self.client.call("CONFIG", "GET", param)))
        return out

    def latency(self) -> dict[str, Any]:
        latest = []
        history: dict[str, list[list[int]]] = {}
        for row in self.client.call("LATENCY", "LATEST"):
            event = decode(row[0])
            latest.append({"event": event, "time": int(row[1]), "latest_ms": int(row[2]), "max_ms": int(row[3])})
        for item in latest:
            rows = self.client.call("LATENCY", "HISTORY", item["event"])
            history[item["event"]] = [[int(ts), int(ms)] for ts, ms in rows]
        return {"latest": latest, "history": history}

    def slowlog(self, config: dict[str, Any]) -> dict[str, Any]:
        max_len = int(config.get("slowlog-max-len") or 128)
        limit = self.slowlog_limit or min(max_len, SLOWLOG_CAP)
        length = int(self.client.call("SLOWLOG", "LEN"))
        raw = self.client.call("SLOWLOG", "GET", limit)
        specs: dict[str, tuple[int, int, int]] = {}
        if self.include_args and raw:
            names = sorted({decode(r[3][0]).lower() for r in raw if r[3]})
            info = self.client.call("COMMAND", "INFO", *names)
            specs = {n: (int(row[3]), int(row[4]), int(row[5])) for n, row in zip(names, info, strict=False) if row}
        entries = [slowlog_entry(r, self.include_args, specs) for r in raw]
        return {
            "len": length, "limit": limit, "max_len": max_len,
            "max_id": max((e["id"] for e in entries), default=None), "entries": entries,
        }


class Collector:
    """Holds one counted client per node; finds the primaries of a cluster from any seed node."""

    def __init__(self, url: str, timeout: float = 2.0, include_args: bool = False,
                 slowlog_limit: int | None = None) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        self.seeds = split_urls(url)
        self.timeout = timeout
        self.include_args = include_args
        self.slowlog_limit = slowlog_limit
        self.clients: dict[str, ToolClient] = {}
        self.node_urls: list[str] | None = None
        self.mode = "standalone"
        self.discovery_errors: list[str] = []

    def client(self, url: str) -> ToolClient:
        if url not in self.clients:
            self.clients[url] = ToolClient(url, self.timeout)
        return self.clients[url]

    def discover(self) -> list[str]:
        if self.node_urls:
            return self.node_urls
        self.discovery_errors = []
        for seed in self.seeds:
            try:
                found = cluster.primaries(self.client(seed))
            except (redis.RedisError, OSError) as exc:
                self.discovery_errors.append(f"{mask_url(seed)}: {why(exc)}")
                continue
            if found is None:
                self.mode, self.node_urls = "standalone", [seed]
            else:
                self.mode, self.node_urls = "cluster", [cluster.node_url(seed, a) for a in found]
            return self.node_urls
        return []

    def snapshot(self) -> dict[str, Any]:
        started = time.perf_counter()
        wall = time.time()
        doc: dict[str, Any] = {"schema": SNAPSHOT_SCHEMA, "url": self.masked_url, "captured_at": iso(wall),
                               "include_args": self.include_args}
        nodes = self.discover()
        doc["mode"] = self.mode
        doc["nodes"] = [NodeProbe(self.client(u), self.include_args, self.slowlog_limit).run() for u in nodes]
        if not nodes:
            doc["error"] = "no Redis node reachable: " + "; ".join(self.discovery_errors)
        elif all("error" in n for n in doc["nodes"]):
            doc["error"] = "; ".join(f"{n['address']}: {n['error']}" for n in doc["nodes"])
        first = next((n for n in doc["nodes"] if "server" in n), None)
        doc["server"] = first["server"] if first else None
        doc["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return doc

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
