"""A real 3-primary cluster: every primary captured, counters summed, histograms merged."""

from __future__ import annotations

import json

from redis.cluster import RedisCluster
from redis_support import LocalCluster

from hardening.redisobs import Collector, compare, observe


def test_cluster_primaries_captured_and_aggregated(tmp_path):
    with LocalCluster() as cluster:
        app = RedisCluster.from_url(cluster.url, protocol=2, driver_info=None)
        app.set("warmup", 1)                        # topology discovery happens outside the window
        collector = Collector(cluster.url)
        with observe(cluster.url, tmp_path, interval=0.2) as obs:
            for i in range(300):
                app.set(f"user:{i}", i)
            for i in range(120):
                app.get(f"user:{i}")
        before = collector.snapshot()
        for _ in range(30):
            app.incrby("hits", 1)
        after = collector.snapshot()
        collector.close()
        app.close()
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert comparison["mode"] == "cluster"
    assert len(comparison["nodes"]) == 3
    per_node_sets = [n["cmd"].get("set", {}).get("calls", 0) for n in comparison["nodes"]]
    assert all(n > 0 for n in per_node_sets), "keys spread over every primary"
    agg = comparison["aggregate"]
    assert sum(per_node_sets) == agg["cmd"]["set"]["calls"] == 300
    assert agg["cmd"]["get"]["calls"] == 120
    assert agg["app_commands"] == 420
    assert agg["latency_percentiles"]["set"]["calls"] == 300       # merged histograms
    assert agg["ops_per_sec"] == sum(n["ops_per_sec"] for n in comparison["nodes"])
    timeline = [json.loads(x) for x in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert all(len(x["nodes"]) == 3 for x in timeline)
    assert obs.summary["nodes"] == 3 and "error" not in obs.summary
    # a second window with the same collector: only the 30 INCRBY of one slot's owner
    agg2 = compare(before, after)["aggregate"]
    assert agg2["app_commands"] == 30
    assert agg2["latency_percentiles"]["incrby"]["calls"] == 30
