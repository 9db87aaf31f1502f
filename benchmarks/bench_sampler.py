"""Cost of the Redis sampler on server throughput, and the time of one full snapshot.

Paired rounds of ``redis-benchmark`` (SET+GET) against one server with the sampler off, at 1 Hz and at
10 Hz, the order rotating every round so drift hits every mode alike. Prints the median throughput per
mode and the median of per-round ratios against "off" (target: 1 Hz costs < 1 %). Then times
``Collector.snapshot()`` with 1,000 idle clients connected and a full slowlog (the default 128 entries
of 32 arguments), against a snapshot of an idle server.

    .venv/bin/python benchmarks/bench_sampler.py [--rounds 6] [--requests 200000]
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from hardening.demo.embedded_redis import EmbeddedRedis, find_server_binary, server_version
from hardening.redisobs.sampler import Sampler
from hardening.redisobs.snapshot import Collector

MODES = {"off": None, "1 Hz": 1.0, "10 Hz": 0.1}


def bench_round(tool: str, port: int, requests: int, clients: int) -> float:
    out = subprocess.run([tool, "-h", "127.0.0.1", "-p", str(port), "-t", "set,get", "-n", str(requests),
                          "-c", str(clients), "-r", "10000", "--csv"], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0] in ("SET", "GET")]
    return statistics.fmean(float(r[1]) for r in rows)


def throughput(tool: str, port: int, url: str, rounds: int, requests: int, clients: int) -> None:
    results: dict[str, list[float]] = {m: [] for m in MODES}
    names = list(MODES)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = names[r % 3:] + names[:r % 3]
            for mode in order:
                sampler = None
                if MODES[mode]:
                    sampler = Sampler([url], Path(tmp) / f"t-{r}-{mode}.jsonl", interval=MODES[mode]).start()
                rps = bench_round(tool, port, requests, clients)
                if sampler:
                    sampler.stop()
                    assert sampler.gaps == 0
                results[mode].append(rps)
            print(f"round {r + 1}/{rounds}: " + ", ".join(f"{m} {results[m][-1]:,.0f}" for m in names),
                  flush=True)
    base = results["off"]
    print("\nmode    median ops/s   paired ratio vs off (median, min..max)")
    for mode in names:
        ratios = [a / b for a, b in zip(results[mode], base, strict=True)]
        print(f"{mode:6s} {statistics.median(results[mode]):>13,.0f}   {statistics.median(ratios):.4f} "
              f"({min(ratios):.4f}..{max(ratios):.4f})")
    stats = redis.Redis.from_url(url, protocol=2, driver_info=None).info("commandstats")["cmdstat_info"]
    per_call = stats["usec_per_call"]
    print(f"server time per sampler INFO ALL: {per_call:.1f} µs -> {per_call / 1e6:.5%} of the server's time "
          f"at 1 Hz, {per_call / 1e5:.4%} at 10 Hz (from cmdstat_info, {stats['calls']} calls)")
    noise = [a / b for a, b in zip(base[1:], base[:-1], strict=False)]
    if noise:
        print(f"round-to-round noise of 'off' alone: {min(noise):.4f}..{max(noise):.4f}")


def snapshot_cost(url: str, port: int) -> None:
    quiet = Collector(url)
    idle = [quiet.snapshot()["duration_ms"] for _ in range(5)]
    app = redis.Redis.from_url(url, protocol=2, driver_info=None)
    app.config_set("slowlog-log-slower-than", 0)
    for i in range(300):                                     # fill the slowlog with 32-argument entries
        app.execute_command("MSET", *[f"key:{i}:{j}" if j % 2 == 0 else "v" * 200 for j in range(40)])
    app.config_set("slowlog-log-slower-than", 10000)
    socks = []
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", port))
        socks.append(s)
    time.sleep(0.3)
    full, parts = [], []
    for _ in range(5):
        snap = quiet.snapshot()
        full.append(snap["duration_ms"])
        parts.append(snap["nodes"][0]["probe_ms"])
    node = snap["nodes"][0]
    print(f"\nsnapshot, idle server:                 median {statistics.median(idle):7.2f} ms")
    print(f"snapshot, {node['clients']['total']} clients + slowlog {node['slowlog']['len']}/"
          f"{node['slowlog']['max_len']}: median {statistics.median(full):7.2f} ms "
          f"(ratio {statistics.median(full) / statistics.median(idle):.1f}x idle)")
    for probe in ("client_list", "slowlog", "config", "latency", "memory_stats"):
        print(f"  {probe:13s} median {statistics.median(p.get(probe, 0) for p in parts):6.2f} ms")
    for s in socks:
        s.close()
    quiet.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=50)
    args = ap.parse_args()
    tool = shutil.which("redis-benchmark")
    if not tool:
        print("redis-benchmark not found: install it with `apt-get install -y redis-tools` (Debian/Ubuntu)",
              file=sys.stderr)
        return 2
    binary = Path("/usr/bin/redis-server") if Path("/usr/bin/redis-server").exists() else find_server_binary()
    print(f"server {binary} {server_version(binary)}; redis-benchmark -t set,get -n {args.requests} "
          f"-c {args.clients}; {args.rounds} paired rounds\n")
    with EmbeddedRedis(binary=binary, extra_args=["--maxclients", "5000"]) as server:
        throughput(tool, server.port, server.url, args.rounds, args.requests, args.clients)
        snapshot_cost(server.url, server.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
