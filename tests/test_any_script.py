"""Real k6 scripts that nobody here wrote (tests/k6_scripts) through `hardening loadtest`:
the same verdict as a plain `k6 run`, SLOs with their origin, statistics equal to k6's own summary,
and a sub-metric SLO on a custom tag judged alike from the summary and from the raw samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from k6_corpus import CORPUS as SCRIPTS
from k6_corpus import PLAIN_EXIT
from k6_target import K6Target

from hardening.loadtest import k6stats
from hardening.loadtest.samples import load_samples
from hardening.record import RunLayout, RunStatus, SloOrigin
from hardening.record.reader import read_record

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
K6 = str(BIN / "k6")
# plain `k6 run` exit code -> hardening's exit code (README): 0 pass, 99 thresholds -> 1, 108 abort -> 3
EXPECTED = {0: 0, 99: 1, 108: 3}


@pytest.fixture(scope="module")
def target():
    with K6Target() as base_url:
        yield base_url


def hardening(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "hardening"), "loadtest", "--no-progress", "--out", "runs", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=180)


def only_record(cwd: Path) -> Path:
    (record,) = [p for p in (cwd / "runs").iterdir() if not p.name.startswith(".")]
    return record


@pytest.mark.parametrize("name, slo", [
    ("thresholds_readme_example.js", None),   # the script's own thresholds, one with abortOnFail: exit 99
    ("scenarios_thresholds.js", None),        # scenarios with exec functions and tag-filtered thresholds
    ("k6_new_protocol.js", None),             # setup() + thresholds
    ("custom_metrics.js", {"thresholds": {"my_trend": ["p(95)<1000"], "my_rate": ["rate>0.5"],
                                          "my_counter": ["count>0"], "my_gauge": ["value>0"]}}),
])
def test_same_verdict_as_plain_k6_and_stats_equal_k6_summary(tmp_path, target, name, slo):
    script = SCRIPTS / name
    plain = PLAIN_EXIT[name]  # what `k6 run` of the script exits with: tests/test_wrapper.py runs it and checks
    args = ["--base-url", target, "--script", str(script), "--keep-raw"]
    if slo:
        (tmp_path / "slo.json").write_text(json.dumps(slo))
        args += ["--slo", "slo.json"]
    proc = hardening(tmp_path, *args)
    assert proc.returncode == EXPECTED[plain], (plain, proc.stdout[-2000:], proc.stderr[-2000:])
    rec = read_record(only_record(tmp_path))
    origins = {str(r.origin) for r in rec.slo_results}
    assert origins == ({"slo-file"} if slo else {"script"}), origins
    failed = [r for r in rec.slo_results if not r.ok]
    # the verdict and its reasons come from the same list
    assert (rec.status == RunStatus.PASS) == (not failed and rec.k6.exit_code == 0)
    # every Trend statistic from the raw samples equals k6's summary, bit for bit
    layout = RunLayout(only_record(tmp_path))
    summary = json.loads(layout.k6_summary.read_text())["metrics"]
    samples = load_samples(layout.samples)
    for metric, values in rec.metrics.trends().items():
        got = samples.loc[samples["metric"] == metric, "value"].to_numpy(float)
        if len(got):
            percents = [float(k[2:-1]) for k in values if k.startswith("p(")]
            stats = k6stats.trend_stats(got, percents)
            for stat, value in summary[metric].items():
                if stat in stats and stat != "count":
                    assert stats[stat] == value, (metric, stat)


def test_sub_metric_slos_reach_k6_and_agree_with_the_samples(tmp_path, target):
    """scenarios_thresholds.js tags its requests test_type:website|api. Extra SLOs on that custom tag and on a
    scenario reach k6 (they appear in its summary with a verdict) and give the same result from
    the raw samples, where every tag k6 wrote is kept."""
    slo = {"thresholds": {"http_req_duration{test_type:api}": ["p(90)<5000"],
                          "http_reqs{test_type:website}": ["count>0"],
                          "http_req_duration{scenario:my_api_test_2}": ["p(95)<5000"]}}
    (tmp_path / "slo.json").write_text(json.dumps(slo))
    proc = hardening(tmp_path, "--base-url", target, "--script", str(SCRIPTS / "scenarios_thresholds.js"),
                     "--slo", "slo.json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rec = read_record(only_record(tmp_path))
    mine = {r.name: r for r in rec.slo_results if r.origin == SloOrigin.SLO_FILE}
    assert set(mine) == {f"{k} {v[0]}" for k, v in slo["thresholds"].items()}
    for name, r in mine.items():
        assert r.k6_failed is False and r.observed is not None, f"{name} did not reach k6's summary"
    from_samples = {r.name: r for r in rec.slo_results_from_samples or []}
    for name, r in mine.items():  # a custom tag and a scenario alike; k6's interpolation, bit for bit
        assert from_samples[name].observed == r.observed and from_samples[name].status == r.status, name


def test_no_thresholds_anywhere_exits_2_and_no_slo_records_without_gate(tmp_path, target):
    script = SCRIPTS / "custom_metrics.js"
    proc = hardening(tmp_path, "--base-url", target, "--script", str(script))
    assert proc.returncode == 2 and "--no-slo" in proc.stderr and "hardening init" in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    proc = hardening(tmp_path, "--base-url", target, "--script", str(script), "--no-slo")
    assert proc.returncode == 0, proc.stderr
    rec = read_record(only_record(tmp_path))
    assert rec.status == RunStatus.PASS and rec.slo_results == []
    assert set(rec.metrics.custom) == {"my_counter", "my_gauge", "my_rate", "my_trend"}
    assert "Payment" not in proc.stdout and "my_trend" in proc.stdout


def test_default_slo_file_in_the_working_directory_is_used_and_said(tmp_path, target):
    (tmp_path / "loadtest").mkdir()
    (tmp_path / "loadtest" / "slo.json").write_text(json.dumps({"thresholds": {"http_req_failed": ["rate<0.5"]}}))
    proc = hardening(tmp_path, "--base-url", target, "--script", str(SCRIPTS / "k6_new_minimal.js"))
    assert proc.returncode == 0, proc.stderr
    assert "using SLO file loadtest/slo.json" in proc.stderr
    rec = read_record(only_record(tmp_path))
    assert [(r.name, str(r.origin)) for r in rec.slo_results] == [("http_req_failed rate<0.5", "slo-file")]


def test_handle_summary_files_land_in_the_record_and_stdout_summary_keeps_working(tmp_path, target):
    for name in ("handle_summary_json.js", "handle_summary_stdout.js"):
        proc = hardening(tmp_path, "--base-url", target, "--script", str(SCRIPTS / name), "--no-slo")
        assert proc.returncode == 0, proc.stderr
    records = sorted(p for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))
    assert len(records) == 2
    written = [RunLayout(r).k6_dir / "summary.json" for r in records]
    assert sum(p.is_file() for p in written) == 1 and not (tmp_path / "summary.json").exists()
    assert all(RunLayout(r).k6_summary.is_file() for r in records)  # k6's export is unaffected
