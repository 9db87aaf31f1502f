"""Review fixes: Redis pre-flight (credentials, URL form), console SLO lines, Redis warnings, CLI writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardening.demo.embedded_redis import EmbeddedRedis
from hardening.demo.service import DemoService
from hardening.loadtest.console import slo_line
from hardening.loadtest.runner import _redis_warnings
from hardening.record import SloResult
from tests.conftest import ROOT

PASSWORD = "Rv-s3cret-pw-4711"


@pytest.fixture(scope="module")
def secured():
    """A password-protected Redis and the demo service using it."""
    with EmbeddedRedis(extra_args=["--requirepass", PASSWORD]) as server:
        url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        with DemoService(url) as service:
            yield url, server.port, service.base_url


@pytest.fixture
def _loadtest(cli):
    """``hardening loadtest --profile quick``, in-process."""
    def run(cli_env, base_url, out, *extra):
        return cli("loadtest", "--base-url", base_url, "--profile", "quick", "--out", str(out), "--no-progress",
                   *extra, env=cli_env, cwd=ROOT)
    return run


def test_slo_lines_format_by_metric_type_and_show_tags():
    def result(**kw) -> SloResult:
        base = {"name": "x", "expression": "", "margin": None, "metric": "http_reqs", "aggregation": "rate",
                "op": ">", "target": 5.0, "observed": 47.48, "status": "pass", "metric_type": "counter"}
        return SloResult(**{**base, **kw})

    counter_rate = result()
    assert slo_line(counter_rate) == "  http_reqs rate: 47.48/s ✅ (SLO: >5/s)"
    assert slo_line(result(aggregation="count", target=10.0, observed=336.0)) == "  http_reqs count: 336 ✅ (SLO: >10)"
    nodata = result(metric="http_req_duration", aggregation="p(95)", op="<", target=800.0, observed=None,
                    status="no_data", metric_type="trend", tags={"scenario": "spike"})
    assert slo_line(nodata) == "  http_req_duration{scenario:spike} p(95): n/a ❌ (no data) (SLO: <800 ms)"
    rate = result(metric="http_req_failed", aggregation="rate", op="<", target=0.01, observed=0.5, status="fail",
                  metric_type="rate")
    assert slo_line(rate) == "  http_req_failed rate: 50.00% ❌ (SLO: <1%)"
    assert slo_line(result(origin="script")).endswith("[script]")


def test_redis_problems_become_warnings():
    summary = {"summary": {"error": "no Redis node reachable", "gaps": 3, "gap_seconds": 2.6}}
    warnings = _redis_warnings(summary)
    assert len(warnings) == 2 and "no Redis node reachable" in warnings[0] and "3 gap(s)" in warnings[1]
    assert _redis_warnings(None) == [] and _redis_warnings({"summary": {"gaps": 0}}) == []


def test_wrong_redis_password_or_bad_url_stops_before_load(_loadtest, secured, cli_env, tmp_path):
    _, port, base_url = secured
    wrong = _loadtest(cli_env, base_url, tmp_path / "a", "--redis-url", f"redis://:nope-{PASSWORD}@127.0.0.1:{port}/0")
    assert wrong.returncode == 2 and "credentials" in wrong.stderr, wrong.stderr
    missing = _loadtest(cli_env, base_url, tmp_path / "b", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert missing.returncode == 2 and "credentials" in missing.stderr, missing.stderr
    bare = _loadtest(cli_env, base_url, tmp_path / "c", "--redis-url", f"127.0.0.1:{port}")
    assert bare.returncode == 2 and "not a Redis URL" in bare.stderr, bare.stderr
    for proc in (wrong, missing, bare):
        assert "Traceback" not in proc.stderr and PASSWORD not in proc.stderr + proc.stdout
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in "abc")


@pytest.mark.e2e
def test_counter_rate_and_submetric_run_with_password_redis(_loadtest, secured, cli_env, tmp_path):
    url, _, base_url = secured
    slo = tmp_path / "slo.json"
    slo.write_text(json.dumps({"thresholds": {"http_reqs": ["rate>1", "count>10"],
                                              "http_req_duration{scenario:nosuch}": ["p(95)<800"]}}))
    proc = _loadtest(cli_env, base_url, tmp_path / "runs", "--slo", str(slo), "--redis-url", url)
    assert proc.returncode == 1, proc.stderr  # the no-data sub-metric fails the run
    assert "/s ✅ (SLO: >1/s)" in proc.stdout and "http_req_duration{scenario:nosuch} p(95): n/a" in proc.stdout
    [record] = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    run = json.loads((record / "run.json").read_text())
    by_summary = {r["name"]: r for r in run["slo_results"]}
    by_samples = {r["name"]: r for r in run["slo_results_from_samples"]}
    # k6's rate is count / its test duration; the raw-sample evaluation uses the same duration.
    assert by_samples["http_reqs rate>1"]["observed"] == pytest.approx(by_summary["http_reqs rate>1"]["observed"],
                                                                       rel=1e-9)
    assert run["redis"]["summary"].get("error") is None and run["redis"]["summary"]["ops_per_sec"] > 0
    texts = [proc.stdout, proc.stderr, *(p.read_text(errors="replace") for p in record.rglob("*")
                                         if p.is_file() and p.suffix != ".parquet")]
    assert not [t for t in texts if PASSWORD in t], "the Redis password leaked"


def test_redis_capture_to_unwritable_path_exits_2(cli, shared_redis, cli_env, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    proc = cli("redis", "capture-before", "--url", shared_redis.url, "--out", str(blocker / "before.json"),
               env=cli_env, cwd=ROOT)
    assert proc.returncode == 2 and "--out" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert blocker.read_text() == "keep" and Path(blocker).is_file()
