"""`hardening redis ...` end to end (in-process CLI), with REDIS_URL, like the seed's script."""

from __future__ import annotations

import json

import pytest
from redis_support import EmbeddedRedis, app_client, binary_or_skip, errors_of

from hardening.net import free_port


@pytest.fixture
def run(cli):
    def run(args, env, cwd):
        return cli("redis", *args, env=env, cwd=cwd)
    return run


@pytest.mark.e2e
def test_seed_workflow(run, cli_env, tmp_path):
    with EmbeddedRedis(binary=binary_or_skip("redis-7.0"), extra_args=["--requirepass", "pw-cli-123"]) as s:
        cli_env["REDIS_URL"] = f"redis://:pw-cli-123@127.0.0.1:{s.port}/0"
        r = run(["enable-monitoring", "5"], cli_env, tmp_path)
        assert r.returncode == 0, r.stderr
        assert "latency-monitor-threshold 0 -> 5" in r.stdout
        assert "slowlog-log-slower-than 10000 -> 5000" in r.stdout
        assert run(["capture-before"], cli_env, tmp_path).returncode == 0
        app = app_client(cli_env["REDIS_URL"])
        for i in range(250):
            app.set(f"k{i}", i)
        app.eval("local i=0 while i<6000000 do i=i+1 end return i", 0)   # > 5 ms: slowlog + latency
        r = run(["capture-after"], cli_env, tmp_path)
        assert r.returncode == 0, r.stderr
        r = run(["generate-report"], cli_env, tmp_path)
        assert r.returncode == 0, r.stderr
    out = tmp_path / "loadtest"
    assert {p.name for p in out.iterdir()} == {"redis-metrics-before.json", "redis-metrics-after.json",
                                              "redis-observability-report.md", "redis-comparison.json"}
    comparison = json.loads((out / "redis-comparison.json").read_text())
    assert comparison["aggregate"]["cmd"]["set"]["calls"] == 250
    report = (out / "redis-observability-report.md").read_text()
    for heading in ("# Redis Observability Report", "### Connections", "### Commands Processed",
                    "### Memory Usage", "## Latency Monitoring", "## Slowlog Analysis", "## Recommendations"):
        assert heading in report
    assert "`EVAL ...`" in report
    assert "pw-cli-123" not in "".join(p.read_text() for p in out.iterdir()) + r.stdout + r.stderr


def test_usage_and_infrastructure_errors(run, cli_env, tmp_path):
    r = run(["capture-before"], cli_env, tmp_path)
    assert r.returncode == 2 and "REDIS_URL" in r.stderr
    cli_env["REDIS_URL"] = f"redis://:pw-down-456@127.0.0.1:{free_port()}/0"
    r = run(["capture-before", "--timeout", "0.5"], cli_env, tmp_path)
    assert r.returncode == 3 and "cannot capture" in r.stderr and "pw-down-456" not in r.stderr
    r = run(["generate-report"], cli_env, tmp_path)
    assert r.returncode == 2 and "capture-before" in r.stderr
    r = run(["capture-before", "--url", "http://127.0.0.1:1"], cli_env, tmp_path)
    assert r.returncode == 2 and "not a Redis URL" in r.stderr


def test_enable_monitoring_without_config(run, cli_env, tmp_path):
    with EmbeddedRedis(binary=binary_or_skip("valkey-9"), extra_args=["--rename-command", "CONFIG", ""]) as s:
        r = run(["enable-monitoring", "100", "--url", s.url], cli_env, tmp_path)
        assert errors_of(s.url)[0] == 0, "the renamed CONFIG must not be sent"
    assert r.returncode == 3
    assert "parameter group" in r.stderr
