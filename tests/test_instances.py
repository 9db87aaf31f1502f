"""`hardening loadtest --instances N`: N real k6 processes, one execution segment each, started and stopped
together, one run record whose verdict comes from every instance's samples together (issue 10)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from k6_target import K6Target

from hardening.loadtest import k6stats
from hardening.loadtest.instances import (
    GroupProgressPrinter,
    combine_live,
    segment,
    segment_sequence,
    whole_summary,
)
from hardening.loadtest.k6 import LiveStats, Plan
from hardening.loadtest.samples import ALL_SCENARIOS, ingest_k6_outputs, load_samples, per_second
from hardening.record.layout import RunLayout
from hardening.record.model import RunStatus
from hardening.record.reader import read_record
from hardening.reports.run_report import instances_frame
from tests.conftest import ROOT, hardening_cmd

pytestmark = pytest.mark.e2e

SHARED = """
import http from 'k6/http';
import { check } from 'k6';
export const options = { scenarios: { s: { executor: 'shared-iterations', vus: %(vus)d, iterations: %(iterations)d } } };
export default function () { check(http.get(`${__ENV.BASE_URL}/`), { 'status 200': (r) => r.status === 200 }); }
"""
PER_VU = """
import http from 'k6/http';
export const options = { scenarios: { s: { executor: 'per-vu-iterations', vus: 4, iterations: 3 } } };
export default function () { http.get(`${__ENV.BASE_URL}/`); http.get(`${__ENV.BASE_URL}/news.php`); }
"""
LONG = """
import http from 'k6/http';
import { sleep } from 'k6';
export const options = { vus: 3, duration: '60s' };
export default function () { http.get(`${__ENV.BASE_URL}/`); sleep(0.1); }
"""
# Only VU 1 of the whole test (exec.vu.idInTest is global across segments: instance 1's) trips the counter, so
# only instance 1's k6 crosses the abortOnFail threshold (k6 evaluates thresholds every 2 s).
ABORT = """
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';
const trip = new Counter('trip');
export const options = { scenarios: { s: { executor: 'constant-vus', vus: 3, duration: '60s' } },
  thresholds: { trip: [{ threshold: 'count<1', abortOnFail: true }] } };
export default function () {
  if (exec.vu.idInTest === 1) { trip.add(1); }
  http.get(`${__ENV.BASE_URL}/`);
  sleep(0.1);
}
"""


@pytest.fixture(scope="module")
def target():
    with K6Target() as base_url:
        yield base_url


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def loadtest(cli, cwd: Path, target: str, script: Path, *args: object):
    return cli("loadtest", "--base-url", target, "--script", script, "--no-progress", "--out", cwd / "runs", *args,
               cwd=cwd)


def only_record(runs: Path) -> Path:
    (record,) = [p for p in runs.iterdir() if not p.name.startswith(".")]
    return record


def raw_points(path: Path, metric: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [p for p in map(json.loads, fh) if p.get("type") == "Point" and p.get("metric") == metric]


# ------------------------------------------------------------------------------------------ units
def test_segments_follow_the_k6_operator():
    assert segment_sequence(3) == "0,1/3,2/3,1"
    assert [segment(i, 3) for i in (1, 2, 3)] == ["0:1/3", "1/3:2/3", "2/3:1"]
    assert segment(1, 1) == "0:1"


def test_live_progress_adds_up_instances_and_takes_the_highest_p95():
    a = LiveStats(requests=100, rps=10.0, error_rate=0.1, p95_ms=20.0, vus=2, iterations=50)
    b = LiveStats(requests=300, rps=30.0, error_rate=0.0, p95_ms=35.0, vus=1, iterations=150)
    c = LiveStats()  # not answering yet
    s = combine_live([a, b, c])
    assert (s.requests, s.rps, s.vus, s.iterations, s.p95_ms) == (400, 40.0, 3, 200, 35.0)
    assert s.error_rate == pytest.approx(10 / 400)
    line = GroupProgressPrinter(Plan(seconds=10, bounded_by="iterations", iterations=400), stream=io.StringIO()).line(s)
    assert "200/400 iterations" in line and "400 reqs" in line and "p95 (max of instances) 35ms" in line, line


def _ndjson(path: Path, instance: int, points: list[tuple[str, str, float, int]]) -> Path:
    """A k6 --out json file: Metric lines, then (metric, type, value, second) Points tagged instance=<i>."""
    types = dict.fromkeys([(m, t) for m, t, _, _ in points])
    lines = [json.dumps({"type": "Metric", "metric": m, "data": {"name": m, "type": t, "contains": "default"}})
             for m, t in types]
    lines += [json.dumps({"type": "Point", "metric": m, "data": {
        "time": f"2026-01-01T00:00:{s:02d}.5Z", "value": v, "tags": {"instance": str(instance), "scenario": "s"}}})
        for m, _, v, s in points]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_whole_summary_rules_per_metric_type(tmp_path):
    """Counters and rates summed exactly, Trends from every sample, Gauges: the test's last value; k6's VU
    gauges summed over instances (each counts its share of the VUs: each instance's own figure)."""
    one = _ndjson(tmp_path / "1.json", 1, [
        ("c", "counter", 1.5, 1), ("r", "rate", 1, 1), ("r", "rate", 0, 2), ("t", "trend", 3.0, 1),
        ("t", "trend", 1.0, 2), ("g", "gauge", 5, 1), ("g", "gauge", 7, 3), ("vus", "gauge", 2, 1),
        ("vus", "gauge", 3, 2)])
    two = _ndjson(tmp_path / "2.json", 2, [
        ("c", "counter", 2.0, 1), ("r", "rate", 1, 1), ("r", "rate", 0, 1), ("t", "trend", 2.0, 1),
        ("t", "trend", 10.0, 2), ("g", "gauge", 9, 2), ("vus", "gauge", 1, 1), ("vus", "gauge", 2, 2)])
    stats = ingest_k6_outputs([one, two], tmp_path / "samples.parquet")
    own = [{"metrics": {"vus": {"value": 3, "min": 2, "max": 3}}},  # what each k6 says of its own samples
           {"metrics": {"vus": {"value": 2, "min": 1, "max": 2}}}]
    summary = whole_summary(tmp_path / "samples.parquet", own, metric_types=stats.metric_types, duration_s=2.0,
                            trend_stats=["avg", "min", "med", "max", "p(90)", "p(99.9)", "count"],
                            submetrics=["t{instance:2}"])
    m = summary["metrics"]
    assert m["c"] == {"count": 3.5, "rate": 1.75}
    assert m["r"] == {"passes": 2, "fails": 2, "value": 0.5}
    values = [3.0, 1.0, 2.0, 10.0]
    expected = k6stats.trend_stats(values, (90, 99.9))
    assert m["t"] == {"avg": expected["avg"], "min": 1.0, "med": expected["med"], "max": 10.0,
                      "p(90)": expected["p(90)"], "p(99.9)": expected["p(99.9)"], "count": 4}
    assert m["t{instance:2}"]["count"] == 2 and m["t{instance:2}"]["max"] == 10.0
    assert m["g"] == {"value": 7, "min": 5, "max": 9}  # the last sample of the test (second 3, instance 1)
    assert m["vus"] == {"value": 3 + 2, "min": 2 + 1, "max": 3 + 2}


@pytest.mark.parametrize("tag", ["instance", "instance_id"])  # hardening's --instances, the k6-operator's runners
def test_vus_per_second_is_the_sum_of_the_instances(tmp_path, tag):
    """Each k6 of a split test counts only its segment's VUs: the test's VUs in a second are the sum of each
    instance's highest value in that second; one k6 (no instance tag) keeps its own highest value."""
    one = _ndjson(tmp_path / "1.json", 1, [("vus", "gauge", 2, 1), ("vus", "gauge", 4, 1), ("vus", "gauge", 3, 2)])
    two = _ndjson(tmp_path / "2.json", 2, [("vus", "gauge", 1, 1), ("vus", "gauge", 2, 2)])
    for path in (one, two):
        path.write_text(path.read_text().replace('"instance":', f'"{tag}":'))
    ingest_k6_outputs([one, two], tmp_path / "samples.parquet")
    test = per_second(tmp_path / "samples.parquet")
    assert test.loc[test["scenario"] == ALL_SCENARIOS, "vus"].tolist() == [4 + 1, 3 + 2]
    alone = load_samples(tmp_path / "samples.parquet").query("metric == 'vus'")  # no instance column
    assert per_second(alone)["vus"].dropna().tolist() == [4, 3]


# ------------------------------------------------------------------------------------------ real k6
def test_three_instances_one_record_percentiles_of_the_union(cli, tmp_path, target):
    script = write(tmp_path, "shared.js", SHARED % {"vus": 6, "iterations": 90})
    slo = write(tmp_path, "slo.json", json.dumps({"thresholds": {
        "http_req_duration": ["p(95)<5000", "p(99)<5000"], "checks": ["rate>0.99"]}}))
    r = loadtest(cli, tmp_path, target, script, "--slo", slo, "--instances", "3", "--keep-raw")
    assert r.code == 0, r.err
    record = only_record(tmp_path / "runs")
    layout = RunLayout(record)
    rec = read_record(record)
    assert rec.status == RunStatus.PASS and rec.instances is not None and len(rec.instances) == 3

    union: list[float] = []
    for i in (1, 2, 3):
        durations = raw_points(layout.instance_raw(i), "http_req_duration")
        assert {p["data"]["tags"]["instance"] for p in durations} == {str(i)}
        union += [p["data"]["value"] for p in durations]
        own = json.loads(layout.instance_summary(i).read_text())  # k6's own summary of segment i, kept
        assert own["metrics"]["http_reqs"]["count"] == len(durations) == rec.instances[i - 1].requests
        assert rec.instances[i - 1].summary == f"k6/instance-{i}/summary.json"
        assert rec.instances[i - 1].segment == segment(i, 3) and rec.instances[i - 1].exit_code == 0
        assert rec.instances[i - 1].p95_ms == own["metrics"]["http_req_duration"]["p(95)"]
    assert len(union) == 90 == rec.metrics.requests == sum(d.requests for d in rec.instances)

    whole = json.loads(layout.k6_summary.read_text())["metrics"]["http_req_duration"]
    for p, key in ((0.95, "p(95)"), (0.99, "p(99)")):
        exact = k6stats.percentile(union, p)
        assert whole[key] == exact  # bit for bit
        for results in (rec.slo_results, rec.slo_results_from_samples):
            (res,) = [x for x in results if x.metric == "http_req_duration" and x.aggregation == key]
            assert res.observed == exact
    assert whole["avg"] == k6stats.trend_stats(union)["avg"]  # the running sum, instance after instance
    assert whole["count"] == 90
    checks = json.loads(layout.k6_summary.read_text())["root_group"]["checks"]["status 200"]
    assert (checks["passes"], checks["fails"]) == (90, 0)  # counted over every instance
    log = layout.k6_log.read_text()
    assert all(f"k6 instance {i}/3 (segment {segment(i, 3)}): exit 0" in log for i in (1, 2, 3))
    assert "Instances (k6's own summary of each segment" in r.out and "instance 3 [2/3:1]" in r.out
    shown = instances_frame(rec)  # the run report's table: each load generator beside the merged figures
    assert list(shown["segment"]) == [segment(i, 3) for i in (1, 2, 3)]
    assert list(shown["requests"]) == [str(d.requests) for d in rec.instances]
    assert all(v.endswith((" ms", "—")) for v in shown["p95"]) and all(v.endswith("%") for v in shown["error rate"])


@pytest.mark.parametrize(("name", "text", "iterations", "requests"), [
    ("shared", SHARED % {"vus": 4, "iterations": 10}, 10, 10),
    ("per_vu", PER_VU, 12, 24),
])
def test_iterations_equal_an_unsplit_run(cli, tmp_path, target, name, text, iterations, requests):
    script = write(tmp_path, f"{name}.js", text)
    (tmp_path / "one").mkdir()
    (tmp_path / "three").mkdir()
    single = loadtest(cli, tmp_path / "one", target, script, "--no-slo")
    split = loadtest(cli, tmp_path / "three", target, script, "--no-slo", "--instances", "3")
    assert single.code == 0 and split.code == 0, (single.err, split.err)
    one = read_record(only_record(tmp_path / "one" / "runs"))
    three = read_record(only_record(tmp_path / "three" / "runs"))
    assert (one.metrics.iterations, one.metrics.requests) == (iterations, requests)
    assert (three.metrics.iterations, three.metrics.requests) == (iterations, requests)
    assert sum(d.iterations for d in three.instances) == iterations  # k6 split them: e.g. 4/3/3 or 6/3/3
    # one instance keeps today's record: no instances field, no per-instance folders
    assert one.instances is None
    assert "instances" not in json.loads((only_record(tmp_path / "one" / "runs") / "run.json").read_text())
    assert not list((only_record(tmp_path / "one" / "runs") / "k6").glob("instance-*"))


@pytest.mark.parametrize(("threshold", "exit_code", "status", "per_instance_k6"), [
    ("count<25", 1, RunStatus.FAIL, 0),   # every instance (10 requests) holds it; the whole test (30) does not
    ("count>25", 0, RunStatus.PASS, 99),  # every instance's k6 says crossed; the whole test holds it
])
def test_slo_is_judged_on_the_whole_test(cli, tmp_path, target, threshold, exit_code, status, per_instance_k6):
    script = write(tmp_path, "shared.js", SHARED % {"vus": 3, "iterations": 30})
    slo = write(tmp_path, "slo.json", json.dumps({"thresholds": {"http_reqs": [threshold]}}))
    r = loadtest(cli, tmp_path, target, script, "--slo", slo, "--instances", "3")
    assert r.code == exit_code, r.err
    rec = read_record(only_record(tmp_path / "runs"))
    assert rec.status == status
    (res,) = rec.slo_results
    assert res.observed == 30 and res.k6_failed is None  # no k6 judged the whole test
    assert [d.exit_code for d in rec.instances] == [per_instance_k6] * 3
    assert all(d.requests < 25 for d in rec.instances)
    if per_instance_k6 == 99:
        assert all(d.thresholds_crossed == [f"http_reqs {threshold}"] for d in rec.instances)
        assert sum("said thresholds crossed on its own segment" in w for w in rec.warnings) == 3


def test_abort_on_fail_in_one_instance_stops_the_others(cli, tmp_path, target):
    script = write(tmp_path, "abort.js", ABORT)
    started = time.monotonic()
    r = loadtest(cli, tmp_path, target, script, "--instances", "3")
    took = time.monotonic() - started
    assert r.code == 1, r.err
    assert took < 20, f"the others ran on for their 60 s ({took:.0f} s)"
    rec = read_record(only_record(tmp_path / "runs"))
    assert rec.status == RunStatus.FAIL and rec.k6.exit_code == 99
    assert [d.exit_code for d in rec.instances] == [99, 105, 105]
    assert rec.instances[0].thresholds_crossed == ["trip count<1"]
    assert any(w.startswith("instance 1 (0:1/3) ended the test: an abortOnFail threshold") for w in rec.warnings)
    layout = RunLayout(only_record(tmp_path / "runs"))
    assert all(layout.instance_summary(i).is_file() for i in (1, 2, 3))  # the stopped ones wrote theirs


# ------------------------------------------------------------------------------------------ Ctrl-C
def _start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid``, None once it has exited (a zombie runs nothing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _k6_runs(parent: int) -> dict[int, str]:
    """``{pid: REST API address}`` of ``parent``'s ``k6 run`` children, from /proc."""
    found = {}
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return found
    for pid in children:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if argv[0].endswith("k6") and argv[1:2] == ["run"]:
            found[int(pid)] = argv[argv.index("--address") + 1]
    return found


def _running_load(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v1/status", timeout=1) as resp:
            return json.load(resp)["data"]["attributes"]["running"] is True
    except OSError:
        return False


def test_ctrl_c_stops_every_instance_and_leaves_no_k6(cli_env, tmp_path, target):
    script = write(tmp_path, "long.js", LONG)
    cli_env["HARDENING_TEST_MARK"] = uuid.uuid4().hex
    proc = subprocess.Popen(
        [*hardening_cmd(), "loadtest", "--base-url", target, "--script", str(script), "--no-slo", "--no-progress",
         "--instances", "3", "--out", str(tmp_path / "runs")],
        env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's Ctrl-C finds it
    k6: dict[int, int | None] = {}
    try:
        deadline = time.monotonic() + 30
        while True:  # three k6 processes, all sending load (resumed together)
            found = _k6_runs(proc.pid)
            for pid in found:
                k6.setdefault(pid, _start_time(pid))
            if len(found) == 3 and all(_running_load(a) for a in found.values()):
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"three running k6 instances never appeared: {found}"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        left = [pid for pid, started in k6.items() if started is not None and _start_time(pid) == started]
        assert not left, f"k6 instance(s) {left} outlived `hardening loadtest --instances 3`"
        rec = read_record(only_record(tmp_path / "runs"))
        assert rec.status == RunStatus.INTERRUPTED
        assert [d.exit_code for d in rec.instances] == [105, 105, 105]  # each stopped gracefully, summary written
        assert rec.metrics.requests == sum(d.requests for d in rec.instances) > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid, started in k6.items():
            if started is not None and _start_time(pid) == started:
                os.kill(pid, signal.SIGKILL)


def test_instances_out_of_range_is_a_usage_error(cli, tmp_path, target):
    script = write(tmp_path, "shared.js", SHARED % {"vus": 1, "iterations": 1})
    for n in ("0", str(10 ** 3)):
        r = loadtest(cli, tmp_path, target, script, "--no-slo", "--instances", n)
        assert r.code == 2 and "--instances must be between 1 and" in r.err, r.err
