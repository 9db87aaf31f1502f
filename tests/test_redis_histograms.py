"""Histogram arithmetic: deltas of cumulative buckets whose last key moves, merging, percentiles."""

from __future__ import annotations

from hardening.redisobs.cluster import merge_histograms
from hardening.redisobs.compare import histogram_delta, histogram_percentiles, percentile_upper


def test_delta_when_the_last_bucket_key_moves():
    # before: 10 calls <= 1 µs, 2 calls at 132 µs (the server names the last bucket by the max seen)
    before = {"get": {"calls": 12, "buckets": {"1": 10, "132": 12}}}
    # after: 5 more <= 1 µs and 3 more between 128 and 256; the 132 key is gone
    after = {"get": {"calls": 20, "buckets": {"1": 15, "128": 15, "256": 20}}}
    delta = histogram_delta(before, after, reset=False)["get"]
    assert delta["calls"] == 8
    assert delta["buckets"] == {"1": 5, "256": 3}


def test_reset_takes_the_after_histogram_whole():
    after = {"set": {"calls": 4, "buckets": {"2": 1, "4": 4}}}
    assert histogram_delta({"set": {"calls": 90, "buckets": {"2": 90}}}, after, reset=True)["set"]["calls"] == 4


def test_cluster_percentiles_come_from_merged_buckets_not_averages():
    fast = {"get": {"calls": 990, "buckets": {"1": 990}}}
    slow = {"get": {"calls": 10, "buckets": {"1024": 10}}}
    merged = merge_histograms([fast, slow])
    p = histogram_percentiles(merged)["get"]
    assert p["calls"] == 1000
    assert p["p99_us_le"] == 1                 # 990 of 1000 calls took <= 1 µs
    assert p["p99.9_us_le"] == 1024
    averaged_p99 = (percentile_upper(fast["get"]["buckets"], 0.99)
                    + percentile_upper(slow["get"]["buckets"], 0.99)) / 2
    assert averaged_p99 != p["p99_us_le"]      # the wrong method gives 512.5
