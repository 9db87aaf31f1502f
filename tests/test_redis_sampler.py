"""observe() around a load: timeline aligned to wall-clock UTC, gaps when Redis dies, never raising."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
import redis
from conftest import wait_for
from redis_support import EmbeddedRedis, app_client, binary_or_skip

from hardening.net import free_port
from hardening.redisobs import observe


def _samples(path) -> list[dict]:
    timeline = path / "timeline.jsonl"
    if not timeline.exists():
        return []
    return [json.loads(x) for x in timeline.read_text().split("\n")[:-1]]  # complete lines only


def _ok_samples(path, ok: bool) -> list[dict]:
    return [x for x in _samples(path) if x["ok"] is ok]


def _gap_seconds(path) -> float:
    failed = _ok_samples(path, False)
    return failed[-1]["t"] - failed[0]["t"] if failed else 0.0


FILES = {"before.json", "after.json", "timeline.jsonl", "comparison.json", "redis-observability-report.md"}


def _traffic(url: str, stop: threading.Event, deadline: float) -> None:
    app = app_client(url)
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            app.set(f"k{i % 100}", i)
            app.get(f"k{(i * 7) % 150}")
        except redis.RedisError:
            time.sleep(0.02)
        i += 1
        time.sleep(0.001)


@pytest.mark.parametrize("server", ["redis-7.0", "valkey-9", "redis-6.2"])
def test_timeline_is_aligned_and_complete(server, tmp_path, shared_server):
    s = shared_server(server)
    stop = threading.Event()
    wall_start = time.time()
    with observe(s.url, tmp_path, interval=0.2) as obs:
        worker = threading.Thread(target=_traffic, args=(s.url, stop, time.monotonic() + 1.2))
        worker.start()
        worker.join()
    wall_end = time.time()
    assert {p.name for p in tmp_path.iterdir()} == FILES
    lines = [json.loads(x) for x in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert 5 <= len(lines) <= 9, len(lines)                       # 1.2 s at 5 Hz
    ts = [x["t"] for x in lines]
    assert ts == sorted(ts) and wall_start <= ts[0] and ts[-1] <= wall_end
    monos = [x["mono"] for x in lines]
    steps = [b - a for a, b in itertools.pairwise(monos)]
    assert all(0.1 < d < 0.4 for d in steps), steps
    busy = [x["ops_per_sec"] for x in lines[1:-1] if x["ops_per_sec"]]
    assert busy and max(busy) > 100
    for x in lines:
        assert x["ok"] and {"connected_clients", "used_memory", "hit_ratio", "cmd"} <= set(x)
    summary = obs.summary
    assert "error" not in summary
    assert summary["gaps"] == 0 and summary["samples"] == len(lines)
    assert summary["top_commands"][0]["command"] in ("set", "get")
    json.dumps(summary)                                            # JSON-able for run.json


def test_sampler_survives_server_killed_mid_run(tmp_path):
    server = EmbeddedRedis(binary=binary_or_skip("valkey-9")).start()
    try:
        stop = threading.Event()
        worker = threading.Thread(target=_traffic, args=(server.url, stop, time.monotonic() + 2))
        started = time.monotonic()
        with observe(server.url, tmp_path, interval=0.1) as obs:
            worker.start()
            wait_for(lambda: len(_ok_samples(tmp_path, True)) >= 3, 5, "three samples of the live server")
            server.proc.kill()                                     # Redis disappears mid-run
            server.proc.wait(5)
            wait_for(lambda: _gap_seconds(tmp_path) >= 0.3, 5, "a gap of 0.3 s in the timeline")
            stop.set()
            worker.join()
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert elapsed < 6, "observe() must not hang on a dead server"
    summary = obs.summary
    assert summary["gaps"] == 1 and summary["gap_seconds"] >= 0.3
    assert "error" in summary
    lines = [json.loads(x) for x in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert lines[0]["ok"] and not lines[-1]["ok"] and "Error" in lines[-1]["error"]
    report = (tmp_path / "redis-observability-report.md").read_text()
    assert "Gap start" in report or "Not available" in report
    assert json.loads((tmp_path / "after.json").read_text())["error"]


def test_observe_with_redis_down_from_the_start(tmp_path):
    url = f"redis://:pw-abcdef@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with observe(url, tmp_path, interval=0.1) as obs:
        wait_for(lambda: _ok_samples(tmp_path, False), 5, "a failed sample")
    assert time.monotonic() - started < 6
    assert "error" in obs.summary and "pw-abcdef" not in json.dumps(obs.summary)
    assert obs.summary["url"].endswith(":***@127.0.0.1:" + url.rsplit(":", 1)[1])


def test_max_duration_bounds_the_sampler(tmp_path, shared_server):
    s = shared_server("valkey-9")
    with observe(s.url, tmp_path, interval=0.05, max_duration=0.3) as obs:
        obs.sampler.thread.join(1.0)                               # returns as soon as the sampler ends
        assert not obs.sampler.thread.is_alive()
    lines = (tmp_path / "timeline.jsonl").read_text().splitlines()
    assert 4 <= len(lines) <= 9
