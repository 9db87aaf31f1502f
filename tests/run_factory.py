"""Small run records made through the one record writer (hardening.record), with SLOs judged by the SLO engine."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hardening.loadtest.samples import PER_SECOND_SCHEMA
from hardening.loadtest.slo import judge, overall_status, parse_slo
from hardening.record import GitInfo, K6Info, RedisLayout, RunRecord
from hardening.record.model import key_metrics
from hardening.record.writer import RunRecordWriter

EVIL = "<script>alert(1)</script>"
T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


SLO_FILE = {"thresholds": {"http_req_duration": ["p(95)<800"], "http_req_failed": ["rate<0.01"]}}


def make_run(root: Path, index: int, p95: float = 120.0, error_rate: float = 0.001, environment: str = "local",
             branch: str = "main", script: str = "loadtest/k6-slo-test.js", seconds: int = 20, seed: int | None = None,
             redis: bool = False, started: dt.datetime | None = None, status: str | None = None) -> Path:
    """One run folder under ``root``, through the record writer; p95 drives per-second latencies, SLOs
    (judged by the SLO engine) and status."""
    rng = np.random.default_rng(index if seed is None else seed)
    start = started or T0 + dt.timedelta(hours=index)
    writer = RunRecordWriter(root, f"{start:%Y%m%dT%H%M%SZ}-abc1234-{index:04x}")
    files = writer.layout
    secs = pd.date_range(start.replace(microsecond=0), periods=seconds, freq="s", tz="UTC")
    rows = []
    for i, s in enumerate(secs):
        for scen, share in (("all", 1.0), ("ramp_up", 0.6 if i < seconds * 0.7 else 0.0),
                            ("spike", 0.4 if i < seconds * 0.7 else 1.0)):
            if share == 0.0:
                continue
            req = int(50 * share) + 1
            errs = int(rng.binomial(req, min(error_rate * 1.0, 1.0)))
            p95_s = float(rng.normal(p95, p95 * 0.05))
            rows.append({"second": s, "scenario": scen, "requests": req, "errors": errs, "error_rate": errs / req,
                         "rps": float(req), "p50_ms": p95_s * 0.5, "p95_ms": p95_s, "p99_ms": p95_s * 1.3,
                         "avg_ms": p95_s * 0.55, "vus": float(min(i + 1, 10)) if scen == "all" else None,
                         "iterations": req})
    table = pa.Table.from_pandas(pd.DataFrame(rows), schema=PER_SECOND_SCHEMA, preserve_index=False)
    pq.write_table(table, files.per_second)
    spec = parse_slo(SLO_FILE, "loadtest/slo.json")
    observed = {"http_req_duration": p95, "http_req_failed": error_rate}
    slos = [judge(o, observed[o.metric], k6_failed=observed[o.metric] >= o.target) for o in spec.objectives]
    run_status = status or str(overall_status(slos))
    dur = {"avg": p95 * 0.55, "min": 1.0, "med": p95 * 0.5, "max": p95 * 2, "p(90)": p95 * 0.9, "p(95)": p95,
           "p(99)": p95 * 1.3}
    summary = {"root_group": {"name": "", "path": "", "groups": {}, "checks": {
        "status is 200": {"name": "status is 200", "passes": 990, "fails": 10},
        EVIL: {"name": EVIL, "passes": 5, "fails": 0}}},
        "metrics": {"http_req_duration": dur, "payment_duration": {k: v * 1.1 for k, v in dur.items()},
                    "queue_duration": {k: v * 0.1 for k, v in dur.items()},
                    "payments_successful": {"count": 100, "rate": 5.0}, "payments_failed": {"count": 1, "rate": 0.05},
                    "http_reqs": {"count": 50 * seconds, "rate": 50.0},
                    "http_req_failed": {"passes": 0, "fails": 0, "value": error_rate},
                    "checks": {"passes": 990, "fails": 10, "value": 0.99},
                    "iterations": {"count": 50 * seconds, "rate": 50.0}, "vus_max": {"value": 10, "min": 10, "max": 10}}}
    files.k6_summary.write_text(json.dumps(summary))
    record = RunRecord(
        run_id=writer.run_id, status=run_status, started_at=start.isoformat(),
        finished_at=(start + dt.timedelta(seconds=seconds)).isoformat(), duration_s=float(seconds),
        environment=environment, profile="quick", script=script, script_sha256="0" * 64,
        target="http://user:***@127.0.0.1:8080", git=GitInfo(commit="abc1234" + "0" * 33, branch=branch, actor="tester"),
        k6=K6Info(version="v1.1.0", exit_code=0 if run_status == "pass" else 99, exit_meaning="ok"),
        slo=spec.to_dict(), slo_results=slos, metrics=key_metrics(summary),
        redis=write_redis(files.redis, secs, rng) if redis else None, warnings=[f"planted warning {EVIL}"])
    return writer.finalize(record)


def _node(calls: int, usec: int, clients: int, mem: int, slow: list[dict], events: list[dict]) -> dict:
    return {"address": "127.0.0.1:6379", "info": {
        "clients": {"connected_clients": clients, "blocked_clients": 0},
        "stats": {"total_commands_processed": calls, "keyspace_hits": calls // 2, "keyspace_misses": 3,
                  "evicted_keys": 0, "rejected_connections": 0, "instantaneous_ops_per_sec": 40},
        "memory": {"used_memory": mem, "used_memory_peak": mem, "mem_fragmentation_ratio": 1.2},
        "commandstats": {"lpush": {"calls": calls, "usec": usec}, EVIL.lower(): {"calls": calls // 10, "usec": usec}}},
        "latency": {"latest": events}, "slowlog": {"max_id": max((e["id"] for e in slow), default=None),
                                                 "entries": slow}}


def write_redis(files: RedisLayout, secs: pd.DatetimeIndex, rng: np.random.Generator) -> dict:
    files.folder.mkdir()
    t0 = int(secs[0].timestamp())
    before = {"schema": "hardening.redis.snapshot/1", "mode": "standalone",
              "server": {"name": "valkey", "version": "9.1.2"}, "nodes": [_node(1000, 5000, 2, 1_000_000, [], [])]}
    slow = [{"id": 7, "time": t0 + 3, "duration_us": 15000, "command": "LPUSH", "arg_count": 3,
             "client": "h:1a2b", "tool": False},
            {"id": 8, "time": t0 + 4, "duration_us": 12000, "command": EVIL, "arg_count": 2, "client": EVIL,
             "tool": False}]
    after = {"schema": "hardening.redis.snapshot/1", "mode": "standalone",
             "server": {"name": "valkey", "version": "9.1.2"},
             "nodes": [_node(6000, 35000, 12, 2_500_000, slow,
                             [{"event": "command", "time": t0 + 5, "latest_ms": 120, "max_ms": 150}])]}
    files.before.write_text(json.dumps(before))
    files.after.write_text(json.dumps(after))
    with files.timeline.open("w") as f:
        for i, s in enumerate(secs):
            f.write(json.dumps({"t": s.timestamp() + 0.2, "ops_per_sec": 200 + 10 * i + float(rng.normal(0, 5)),
                                "connected_clients": 10, "used_memory": 1_000_000 + 50_000 * i,
                                "mem_fragmentation_ratio": 1.2, "hit_ratio": 0.95}) + "\n")
    counters = {"total_commands_processed": {"before": 1000, "after": 6000, "delta": 5000},
                "evicted_keys": {"before": 0, "after": 0, "delta": 0}}
    gauges = {"connected_clients": {"before": 2, "after": 12, "delta": 10},
              "used_memory": {"before": 1_000_000, "after": 2_500_000, "delta": 1_500_000}}
    per_command = [{"command": "lpush", "calls": 5000, "usec": 30000, "usec_per_call": 6.0, "share_of_time": 0.8,
                    "p50_us_le": 4, "p99_us_le": 66, "failed_calls": 0},
                   {"command": EVIL, "calls": 10, "usec": 500, "usec_per_call": 50.0, "share_of_time": 0.2,
                    "p50_us_le": 33, "p99_us_le": 66, "failed_calls": 0}]
    top = [{**e, "node": "127.0.0.1:6379"} for e in slow]
    comparison = {
        "schema": "hardening.redis.comparison/1", "mode": "standalone",
        "server": {"kind": "valkey", "version": "9.1.2"},
        "aggregate": {"ops_per_sec": 250.0, "counters": counters, "gauges": gauges, "per_command": per_command,
                      "hit_ratio_before": None, "hit_ratio_window": 0.95,
                      "peaks": {"connected_clients": 12, "blocked_clients": 0},
                      "latency_events": [{"event": "command", "node": "127.0.0.1:6379", "samples_in_window": 1,
                                          "peak_ms": 150, "peak_time": secs[5].isoformat(), "all_time_max_ms": 150}],
                      "slowlog": {"new_entries": 2, "lost_entries": 0, "lost_is_lower_bound": True,
                                  "tool_entries_excluded": 0, "max_len": 128, "by_command": [], "top": top}},
        "recommendations": [{"rule": "latency_events", "severity": "warning", "title": "Latency events",
                             "detail": f"1 latency event; key {EVIL}", "threshold": "any"}],
    }
    files.comparison.write_text(json.dumps(comparison))
    return {"server": "valkey 9.1.2", "url": "redis://127.0.0.1:6379", "mode": "standalone",
            "summary": {"ops_per_sec": 250.0, "top_commands": per_command, "evictions": 0, "latency_events": 1,
                        "slowlog_new": 2, "recommendations": 1}}


def make_history(root: Path, n: int = 24, regression_at: int | None = 14, fail_every: int | None = 7,
                 redis_last: bool = True) -> list[Path]:
    """``n`` runs: p95 ≈ 120 ms, from ``regression_at`` ≈ 300 ms; every ``fail_every``-th run fails on errors."""
    out = []
    for i in range(n):
        p95 = 300.0 if regression_at is not None and i >= regression_at else 120.0
        err = 0.05 if fail_every and i % fail_every == fail_every - 1 else 0.001
        env = "staging" if i % 5 == 4 else "local"
        out.append(make_run(root, i, p95=p95, error_rate=err, environment=env,
                            branch="feature" if i % 6 == 5 else "main", redis=redis_last and i >= n - 3))
    return out


def make_ledger(path: Path, n: int = 12) -> Path:
    """A small ledger: ``n`` production changes every 6 h, every 4th fails and is rolled back 3 min later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    prev = None
    for i in range(n):
        start = T0 + dt.timedelta(hours=6 * i)
        dep_id = f"dep-{start:%Y%m%d%H%M%S}-{i:04x}"
        entry = {"id": dep_id, "env": "production", "service": "backend", "version": f"backend-{i}",
                 "commit": f"{i:040x}", "commit_time": (start - dt.timedelta(hours=2)).isoformat(),
                 "started_at": start.isoformat(), "finished_at": None, "status": "in_progress", "previous": prev,
                 "rollback_of": None, "incident": None, "reason": None, "actor": EVIL}
        lines.append(dict(entry))
        bad = i % 4 == 3
        entry.update(finished_at=(start + dt.timedelta(seconds=90)).isoformat(),
                     status="rolled_back" if bad else "green", reason="health check failed" if bad else None)
        lines.append(dict(entry))
        if bad:
            rb_start = start + dt.timedelta(seconds=100)
            lines.append({**entry, "id": f"dep-{rb_start:%Y%m%d%H%M%S}-rb{i:02x}", "version": f"backend-{i - 1}",
                          "started_at": rb_start.isoformat(),
                          "finished_at": (rb_start + dt.timedelta(seconds=80)).isoformat(), "status": "green",
                          "rollback_of": dep_id, "previous": dep_id, "reason": "automatic rollback"})
        else:
            prev = dep_id
    lines.append({"id": "dep-staging-1", "env": "staging", "service": "backend", "version": "backend-s",
                  "commit": "f" * 40, "commit_time": T0.isoformat(), "started_at": T0.isoformat(),
                  "finished_at": T0.isoformat(), "status": "green", "previous": None, "rollback_of": None})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "{not json\n")
    return path
