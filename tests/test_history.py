"""hardening.record.reader: one DataFrame row per run, tolerant of bad records; one run with its parts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from run_factory import make_history, make_run

from hardening.errors import ConfigError
from hardening.loadtest.samples import SAMPLES_SCHEMA
from hardening.record import SCHEMA_VERSION, RunRecord, RunStatus, SloStatus
from hardening.record import reader as history

SAMPLE_RUNS = Path(__file__).resolve().parent.parent / "data" / "sample" / "runs"


def test_load_runs_one_row_per_run_oldest_first(tmp_path):
    made = make_history(tmp_path, n=8, regression_at=5, fail_every=4)
    df = history.load_runs(tmp_path)
    assert list(df["run_id"]) == [p.name for p in made]
    assert df["started_at"].is_monotonic_increasing
    assert isinstance(df["started_at"].dtype, pd.DatetimeTZDtype) and str(df["started_at"].dt.tz) == "UTC"
    assert list(df["status"]) == ["pass", "pass", "pass", "fail", "pass", "pass", "pass", "fail"]
    assert df.loc[0, "http_req_duration_p95"] == pytest.approx(120.0)
    assert df.loc[6, "http_req_duration_p95"] == pytest.approx(300.0)
    assert df.loc[3, "slo_failed"] == 1
    assert df.loc[0, "branch"] == "main" and df.loc[0, "environment"] == "local"
    assert df.loc[7, "redis.ops_per_sec"] == pytest.approx(250.0)
    assert df.attrs["skipped"] == []


def test_filters(tmp_path):
    make_history(tmp_path, n=12)
    all_runs = history.load_runs(tmp_path)
    staging = history.load_runs(tmp_path, environment="staging")
    assert len(staging) == (all_runs["environment"] == "staging").sum() > 0
    assert set(staging["environment"]) == {"staging"}
    feature = history.load_runs(tmp_path, branch="feature", environment="local")
    assert set(feature["branch"]) == {"feature"} and set(feature["environment"]) == {"local"}
    assert history.load_runs(tmp_path, script="nope.js").empty


def test_unreadable_records_are_skipped_with_a_warning(tmp_path):
    make_history(tmp_path, n=3, regression_at=None, fail_every=None, redis_last=False)
    (tmp_path / "20990101T000000Z-bad0000-0001").mkdir()
    (tmp_path / "20990101T000000Z-bad0000-0001" / "run.json").write_text('{"run_id": "x", "status": ')
    (tmp_path / "20990101T000000Z-bad0000-0002").mkdir()  # no run.json at all
    (tmp_path / "20990101T000000Z-bad0000-0003").mkdir()
    (tmp_path / "20990101T000000Z-bad0000-0003" / "run.json").write_text("[1, 2]")
    (tmp_path / ".tmp-20990101T000000Z-x").mkdir()  # a run being written: ignored silently
    with pytest.warns(history.RecordWarning) as caught:
        df = history.load_runs(tmp_path)
    assert len(df) == 3
    assert len(df.attrs["skipped"]) == 3
    assert len(caught) == 3
    reasons = " ".join(r for _, r in df.attrs["skipped"])
    assert "missing run.json" in reasons and "not a run record" in reasons


def test_missing_history_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        history.load_runs(tmp_path / "nope")


def test_empty_history_has_the_columns(tmp_path):
    df = history.load_runs(tmp_path)
    assert df.empty and {"run_id", "status", "started_at", "environment"} <= set(df.columns)


def test_slo_frame_is_long(tmp_path):
    make_history(tmp_path, n=4, regression_at=None, fail_every=2, redis_last=False)
    long = history.slo_frame(history.load_runs(tmp_path))
    assert len(long) == 8
    assert set(long["name"]) == {"http_req_duration p(95)<800", "http_req_failed rate<0.01"}
    failed = long[long["status"] == "fail"]
    assert list(failed["name"]) == ["http_req_failed rate<0.01"] * 2


def test_load_run_reads_parts(tmp_path):
    run_dir = make_run(tmp_path, 1, redis=True)
    run = history.load_run(run_dir)
    assert run.run_id == run_dir.name
    assert set(run.per_second["scenario"]) == {"all", "ramp_up", "spike"}
    assert run.summary["metrics"]["payments_successful"]["count"] == 100
    assert run.redis_dir == run_dir / "redis"
    assert not run.has_samples and run.samples().empty


def test_load_run_computes_per_second_from_samples(tmp_path):
    run_dir = make_run(tmp_path, 1)
    (run_dir / "per_second.parquet").unlink()
    t0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    rows = []
    for s in range(3):
        for k in range(10):
            t = t0 + dt.timedelta(seconds=s, milliseconds=50 * k)
            rows.append({"time": t, "metric": "http_req_duration", "value": float(10 * (s + 1) + k),
                         "scenario": "spike"})
            rows.append({"time": t, "metric": "http_reqs", "value": 1.0, "scenario": "spike"})
            rows.append({"time": t, "metric": "http_req_failed", "value": 1.0 if k == 0 else 0.0, "scenario": "spike"})
    frame = pd.DataFrame(rows)
    for col in SAMPLES_SCHEMA.names:
        if col not in frame:
            frame[col] = None
    pq.write_table(pa.Table.from_pandas(frame[SAMPLES_SCHEMA.names], schema=SAMPLES_SCHEMA, preserve_index=False),
                   run_dir / "samples.parquet")
    run = history.load_run(run_dir)
    overall = run.per_second[run.per_second["scenario"] == "all"]
    assert list(overall["requests"]) == [10, 10, 10]
    assert list(overall["errors"]) == [1, 1, 1]
    assert overall["p50_ms"].iloc[1] == pytest.approx(24.5)
    assert run.has_samples and len(run.samples("http_req_duration")) == 30


def test_read_record_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"run\.json not found"):
        history.load_run(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{oops")
    with pytest.raises(ConfigError, match="not a readable run record"):
        history.load_run(bad)
    (bad / "run.json").write_text(json.dumps({"status": "pass"}))
    with pytest.raises(ConfigError, match="no run_id"):
        history.load_run(bad)


def test_find_baseline_same_environment_and_script_last_pass(tmp_path):
    made = make_history(tmp_path, n=10, regression_at=None, fail_every=3, redis_last=False)
    df = history.load_runs(tmp_path)
    current = history.read_record(made[9])  # index 9: environment staging
    base = history.find_baseline(df, current)
    assert base is not None and base["environment"] == "staging" and base["status"] == "pass"
    assert base["started_at"] < pd.Timestamp(current.started_at)
    local = history.read_record(made[7])
    b2 = history.find_baseline(df, local)
    assert b2["run_id"] == made[6].name  # 6 is local and passing; 7 itself excluded
    first = history.read_record(made[0])
    assert history.find_baseline(df, first) is None


def test_latest_run_dir(tmp_path):
    made = make_history(tmp_path, n=3, regression_at=None, fail_every=None, redis_last=False)
    assert history.latest_run_dir(tmp_path) == made[-1]
    with pytest.raises(ConfigError):
        history.latest_run_dir(tmp_path / "empty-does-not-exist")


def test_record_round_trips_through_the_model_and_custom_metrics_are_typed(tmp_path):
    made = make_run(tmp_path, 1)
    rec = history.read_record(made)
    assert rec.schema_version == SCHEMA_VERSION and rec.status == RunStatus.PASS
    assert {r.status for r in rec.slo_results} == {SloStatus.PASS}
    custom = rec.metrics.custom
    assert custom["payment_duration"].type == "trend" and custom["payments_failed"].type == "counter"
    assert RunRecord.from_dict(rec.to_dict()) == rec
    row = history.load_runs(tmp_path).iloc[0]
    assert row["payment_duration_p95"] == pytest.approx(120.0 * 1.1) and row["payments_failed_count"] == 1


def test_version_1_record_is_migrated_and_a_newer_one_is_refused(tmp_path):
    v1 = json.loads((SAMPLE_RUNS / sorted(p.name for p in SAMPLE_RUNS.iterdir())[0] / "run.json").read_text())
    assert v1["schema_version"] == 1 and "payments_successful" in v1["metrics"]
    rec = RunRecord.from_dict(v1)
    assert rec.metrics.custom["payments_successful"].values["count"] == v1["metrics"]["payments_successful"]
    assert rec.metrics.custom["payment_duration"].type == "trend"
    assert rec.redis_summary.get("ops_per_sec") == v1["redis"]["ops_per_sec"]
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({**v1, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ConfigError, match="newer than this hardening reads"):
        history.read_record(tmp_path / "r")
    (tmp_path / "r" / "run.json").write_text(json.dumps({**v1, "status": "maybe"}))
    with pytest.raises(ConfigError, match="unknown status 'maybe'"):
        history.read_record(tmp_path / "r")
