"""Comparison numbers against real servers: exact command counts, rates, resets, slowlog loss."""

from __future__ import annotations

import json
import time

import pytest
from redis_support import SERVERS, EmbeddedRedis, app_client, binary_or_skip

from hardening.redisobs import Collector, compare, observe


def _no_negative(obj, path="") -> None:
    """Counter deltas are never negative (gauges such as used memory may go down)."""
    if isinstance(obj, dict) and "gauges" not in path:
        for k, v in obj.items():
            if k in ("delta", "calls", "usec", "app_commands", "new_entries", "lost_entries") and \
                    isinstance(v, (int, float)):
                assert v >= 0, f"negative {path}.{k} = {v}"
            _no_negative(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _no_negative(v, f"{path}[{i}]")


@pytest.mark.parametrize("server", SERVERS)
def test_exact_command_count_and_rate(server, shared_server):
    s = shared_server(server)
    app = app_client(s.url)
    app.ping()                                  # connect outside the window
    collector = Collector(s.url)
    t0 = time.monotonic()
    before = collector.snapshot()
    traffic_start = time.monotonic()
    pipe = app.pipeline(transaction=False)
    for i in range(400):
        pipe.set(f"k{i}", "v")
    pipe.execute()
    for _ in range(300):
        app.incr("counter")
    time.sleep(0.3)                             # idle time inside the window counts too
    traffic_end = time.monotonic()
    after = collector.snapshot()
    t1 = time.monotonic()
    collector.close()
    agg = compare(before, after)["aggregate"]
    assert agg["app_commands"] == 700
    cmd = agg["cmd"]
    assert cmd["set"]["calls"] == 400 and cmd["incrby"]["calls"] == 300  # redis-py sends INCRBY
    assert "info" not in {r["command"] for r in agg["per_command"]}, "the tool's INFO leaked into the app's"
    # the window lies between the two snapshot calls, and contains the traffic
    assert traffic_end - traffic_start <= agg["window"]["seconds"] <= t1 - t0
    assert 700 / (t1 - t0) <= agg["ops_per_sec"] <= 700 / (traffic_end - traffic_start)
    if server != "redis-6.2":
        assert agg["latency_percentiles"]["set"]["calls"] == 400
        assert agg["latency_percentiles"]["incrby"]["calls"] == 300
        assert agg["latency_percentiles"]["set"]["p99_us_le"] >= agg["latency_percentiles"]["set"]["p50_us_le"]
    else:
        assert "7.0" in agg["latency_percentiles_source"]
    _no_negative(agg)


@pytest.mark.parametrize("server", ["valkey-9", "redis-6.2"])
def test_sampler_commands_are_subtracted(server, tmp_path, shared_server):
    """10 Hz sampling in the window must not change the application's count."""
    s = shared_server(server)
    app = app_client(s.url)
    app.ping()
    with observe(s.url, tmp_path, interval=0.1) as obs:
        deadline = time.monotonic() + 1.0
        sent = 0
        while time.monotonic() < deadline:
            app.set(f"x{sent % 50}", sent)
            sent += 1
            time.sleep(0.002)
    summary = obs.summary
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert summary["samples"] >= 6
    assert comparison["aggregate"]["app_commands"] == sent
    assert comparison["aggregate"]["cmd"]["set"]["calls"] == sent
    # timeline per-interval rates add up to the same total (first sample has no previous one)
    lines = [json.loads(x) for x in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    per_interval = sum(x["cmd_delta"].get("set", [0])[0] for x in lines[1:])
    assert per_interval <= sent
    assert summary["ops_per_sec"] == pytest.approx(sent / comparison["aggregate"]["window"]["seconds"], rel=0.01)


@pytest.mark.parametrize("server", SERVERS)
def test_config_resetstat_is_detected(server, shared_server):
    s = shared_server(server)
    app = app_client(s.url)
    for i in range(500):
        app.set(f"k{i}", i)
    collector = Collector(s.url)
    before = collector.snapshot()
    for i in range(100):
        app.get(f"k{i}")
    app.config_resetstat()
    for i in range(40):
        app.get(f"k{i}")
    after = collector.snapshot()
    collector.close()
    comparison = compare(before, after)
    agg = comparison["aggregate"]
    assert agg["reset"]["detected"], agg["reset"]
    assert "counters dropped" in agg["reset"]["reasons"][0]
    assert 40 <= agg["cmd"]["get"]["calls"] <= 41           # counted since the reset: a lower bound
    assert any(r["rule"] == "reset" for r in comparison["recommendations"])
    _no_negative(agg)


def test_restart_is_detected(tmp_path):
    binary = binary_or_skip("valkey-9")
    server = EmbeddedRedis(binary=binary).start()
    port = server.port
    try:
        app = app_client(server.url)
        for i in range(300):
            app.set(f"k{i}", i)
        collector = Collector(server.url)
        before = collector.snapshot()
        server.stop()
        server = EmbeddedRedis(binary=binary, port=port).start()
        app = app_client(server.url)
        for i in range(25):
            app.set(f"n{i}", i)
        after = collector.snapshot()                 # same collector: reconnects by itself
        collector.close()
    finally:
        server.stop()
    assert before["server"]["run_id"] != after["server"]["run_id"]
    agg = compare(before, after)["aggregate"]
    assert agg["reset"]["detected"]
    assert "run_id changed" in agg["reset"]["reasons"][0]
    assert agg["cmd"]["set"]["calls"] == 25
    _no_negative(agg)


@pytest.mark.parametrize("server", SERVERS)
def test_slowlog_lost_entries(server, shared_server):
    s = shared_server(server)
    app = app_client(s.url)
    app.config_set("slowlog-max-len", 8)            # the next test's reset sets both back
    app.config_set("slowlog-log-slower-than", 0)
    app.ping()
    collector = Collector(s.url)
    before = collector.snapshot()
    for i in range(100):
        app.set(f"k{i}", i)
    after = collector.snapshot()
    collector.close()
    log = compare(before, after)["aggregate"]["slowlog"]
    retrieved = log["new_entries"] + log["tool_entries_excluded"]
    assert retrieved <= 8
    assert log["lost_entries"] >= 100 - 8
    assert log["lost_is_lower_bound"] is False
    # ids are exact: everything logged between the snapshots is either retrieved or lost
    ids_logged = after["nodes"][0]["slowlog"]["max_id"] - before["nodes"][0]["slowlog"]["max_id"]
    assert retrieved + log["lost_entries"] == ids_logged
