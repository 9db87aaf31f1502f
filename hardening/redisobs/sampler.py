"""Background poller during a load test: ``INFO ALL`` on every node at a fixed rate (1 Hz default).

Writes the timeline (``RedisLayout.timeline``), one JSON object per tick. ``t`` is UTC epoch seconds
(float), the clock of k6's sample timestamps; ``mono`` is the client monotonic clock used for rates. A tick
where no node answers is written as ``{"t", "mono", "ok": false, "error"}``: a gap, and the sampler carries on
(reconnecting each tick) until it is stopped or ``max_duration`` is over. It never raises.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from hardening.masking import mask
from hardening.redisobs.connection import ToolClient, now_pair
from hardening.redisobs.info import parse_info
from hardening.redisobs.metrics import hit_ratio, point_from_info, window

SUMMED = ("ops_per_sec", "connected_clients", "blocked_clients", "used_memory", "used_memory_rss",
          "evicted", "error_replies", "keyspace_hits", "keyspace_misses")


def node_sample(client: ToolClient, prev: dict[str, Any] | None) -> dict[str, Any]:
    sent = Counter(client.sent)
    w0, m0 = now_pair()
    raw = client.call("INFO", "ALL")
    w1, m1 = now_pair()
    tool_before = Counter(client.sent) - sent - Counter({"info": 1})
    point = point_from_info(parse_info(raw), (w0 + w1) / 2, (m0 + m1) / 2, dict(tool_before))
    g = point["gauges"]
    sample: dict[str, Any] = {
        "ok": True, "node": client.address, **point,
        "connected_clients": g.get("connected_clients"), "blocked_clients": g.get("blocked_clients"),
        "used_memory": g.get("used_memory"), "used_memory_rss": g.get("used_memory_rss"),
        "mem_fragmentation_ratio": g.get("mem_fragmentation_ratio"),
        "ops_per_sec": None, "hit_ratio": None, "evicted": None, "error_replies": None, "reset": False,
    }
    if prev is not None:
        win = window([prev, point])
        sample.update({
            "ops_per_sec": round(win.ops_per_sec, 3) if win.ops_per_sec is not None else None,
            "hit_ratio": hit_ratio(win.counters["keyspace_hits"], win.counters["keyspace_misses"]),
            "keyspace_hits": win.counters["keyspace_hits"], "keyspace_misses": win.counters["keyspace_misses"],
            "evicted": win.counters["evicted_keys"], "error_replies": win.counters["total_error_replies"],
            "reset": bool(win.resets),
            "cmd_delta": {n: [win.cmd_calls[n], win.cmd_usec[n]] for n in win.cmd_calls
                          if win.cmd_calls[n] or win.cmd_usec[n]},
        })
    return sample


class Sampler:
    """``start()`` a daemon thread; ``stop()`` sets the Event and joins it."""

    def __init__(self, node_urls: list[str], path: Path, interval: float = 1.0,
                 max_duration: float | None = None, timeout: float | None = None) -> None:
        if interval <= 0:
            raise ValueError("sampling interval must be > 0 seconds")
        self.node_urls = list(node_urls)
        self.path = Path(path)
        self.interval = interval
        self.max_duration = max_duration
        self.timeout = timeout or max(0.25, min(2.0, interval))
        self.stop_event = threading.Event()
        self.samples = 0
        self.gaps = 0
        self.thread = threading.Thread(target=self._run, name="redis-sampler", daemon=True)
        self.error: str | None = None

    def start(self) -> Sampler:
        self.thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout if timeout is not None else self.timeout * len(self.node_urls) + 2)

    def _run(self) -> None:
        clients = [ToolClient(u, self.timeout) for u in self.node_urls]
        prev: dict[str, dict[str, Any]] = {}
        start = next_tick = time.monotonic()
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                while not self.stop_event.is_set():
                    if self.max_duration is not None and time.monotonic() - start > self.max_duration:
                        break
                    fh.write(json.dumps(self._tick(clients, prev), separators=(",", ":")) + "\n")
                    fh.flush()
                    self.samples += 1
                    next_tick += self.interval
                    delay = next_tick - time.monotonic()
                    if delay < 0:                       # fell behind (slow server): skip missed ticks
                        next_tick = time.monotonic()
                        delay = 0
                    self.stop_event.wait(delay)
        except Exception as exc:
            self.error = mask(f"sampler stopped: {type(exc).__name__}: {exc}")
        finally:
            for c in clients:
                c.close()

    def _tick(self, clients: list[ToolClient], prev: dict[str, dict[str, Any]]) -> dict[str, Any]:
        nodes: dict[str, dict[str, Any]] = {}
        for client in clients:
            try:
                s = node_sample(client, prev.get(client.address))
                prev[client.address] = s
                nodes[client.address] = s
            except (redis.RedisError, OSError) as exc:
                t, m = now_pair()
                nodes[client.address] = {"ok": False, "node": client.address, "t": t, "mono": m,
                                         "error": mask(f"{type(exc).__name__}: {exc}")}
        if len(clients) == 1:
            sample = nodes[clients[0].address]
        else:
            ok = [n for n in nodes.values() if n["ok"]]
            t, m = now_pair()
            sample = {"t": t, "mono": m, "ok": bool(ok), "nodes": nodes,
                      "reset": any(n.get("reset") for n in ok)}
            if not ok:
                sample["error"] = "; ".join(f"{a}: {n['error']}" for a, n in nodes.items())
            for key in SUMMED:
                values = [n[key] for n in ok if n.get(key) is not None]
                sample[key] = sum(values) if values else None
            sample["hit_ratio"] = hit_ratio(sample["keyspace_hits"] or 0, sample["keyspace_misses"] or 0)
        if not sample["ok"]:
            self.gaps += 1
        return sample


def read_timeline(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue   # a torn last line after a crash
    return out
