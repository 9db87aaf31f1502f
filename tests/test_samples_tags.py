"""Every tag k6 writes reaches samples.parquet: a real k6 run with custom tags, and the edge cases of tag discovery."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq
import pytest
from k6_target import K6Target

from hardening.errors import ConfigError
from hardening.loadtest import samples as samples_mod
from hardening.loadtest.samples import (
    SAMPLES_SCHEMA,
    TAG_COLUMNS,
    TAGS_COLUMN,
    ingest_k6_csv,
    ingest_k6_json,
    ingest_k6_outputs,
    load_samples,
    sample_tag_names,
)
from hardening.loadtest.slo import evaluate_samples, evaluate_summary, parse_slo
from hardening.record.model import SloStatus

K6 = Path(sys.executable).parent / "k6"

# Per-request tags (my_tag, and a value with '&' that CSV cannot escape) and scenario-level tags (stage, test_type).
SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: {
    tagged: { executor: 'constant-vus', vus: 2, duration: '1500ms', tags: { stage: 'warm', test_type: 'api' } },
  },
  thresholds: {
    'http_req_duration{my_tag:x}': ['p(95)<5000', 'avg<5000', 'max<5000'],
    'http_reqs{stage:warm}': ['count>0'],
    'http_req_failed{my_tag:y}': ['rate<=1'],
  },
};
export default function () {
  http.get(`${__ENV.BASE_URL}/`, { tags: { my_tag: 'x', odd: 'a&b' } });
  http.get(`${__ENV.BASE_URL}/missing`, { tags: { my_tag: 'y' } });
}
"""
SLOS = {
    "http_req_duration{my_tag:x}": ["p(95)<5000", "avg<5000", "max<5000"],
    "http_reqs{stage:warm}": ["count>0"],
    "http_req_failed{my_tag:y}": ["rate<=1"],
}


@pytest.fixture(scope="module")
def tagged_run(tmp_path_factory) -> dict:
    """One real ~1.5 s k6 run with custom tags: raw JSON, CSV and the summary export (thresholds present)."""
    work = tmp_path_factory.mktemp("tagged")
    (work / "script.js").write_text(SCRIPT)
    with K6Target() as url:
        proc = subprocess.run(
            [str(K6), "run", "--quiet", "--no-usage-report", "--out", f"json={work / 'raw.json'}",
             "--out", f"csv={work / 'raw.csv'}", "--summary-export", str(work / "summary.json"),
             "--summary-trend-stats", "avg,min,med,max,p(90),p(95),p(99),count",
             "--env", f"BASE_URL={url}", str(work / "script.js")],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = ingest_k6_json(work / "raw.json", work / "samples.parquet")
    csv_stats = ingest_k6_csv(work / "raw.csv", work / "samples-csv.parquet")
    return {"dir": work, "stats": stats, "csv_stats": csv_stats, "parquet": work / "samples.parquet",
            "csv_parquet": work / "samples-csv.parquet", "summary": json.loads((work / "summary.json").read_text())}


def _slo_frame(path: Path, spec) -> object:
    """What the runner loads for SLOs: only their metrics, and every tag they name as a column."""
    return load_samples(path, metrics=sorted({o.metric for o in spec.objectives}),
                        columns=["time", "metric", "value"], tags=sorted({t for o in spec.objectives for t in o.tags}))


def test_every_tag_is_kept(tagged_run):
    frame = load_samples(tagged_run["parquet"], metrics=["http_req_duration"], columns=["metric", TAGS_COLUMN],
                         tags=["scenario", "status"])
    first = frame.iloc[0]
    assert {"my_tag", "stage", "test_type", "url", "proto"} <= set(first[TAGS_COLUMN])
    assert not set(first[TAGS_COLUMN]) & set(TAG_COLUMNS)  # the tag columns are not repeated in the map
    assert first["scenario"] == "tagged" and first[TAGS_COLUMN]["stage"] == "warm"
    assert {m[TAGS_COLUMN]["my_tag"] for _, m in frame.iterrows()} == {"x", "y"}
    assert {m[TAGS_COLUMN].get("odd") for _, m in frame.iterrows()} == {"a&b", None}
    assert tagged_run["stats"].extra_tags == sorted(["my_tag", "odd", "proto", "stage", "test_type", "url"])
    assert sample_tag_names(tagged_run["parquet"]) == [*TAG_COLUMNS, *tagged_run["stats"].extra_tags]
    assert pq.read_schema(tagged_run["parquet"]).equals(SAMPLES_SCHEMA)


def test_sub_metric_slo_on_a_custom_tag_equals_k6_summary(tagged_run):
    """http_req_duration{my_tag:x}: k6's summary (threshold present in the run) and the samples agree, bit for bit."""
    spec = parse_slo({"thresholds": SLOS}, source="test")
    spec.resolve_types(tagged_run["stats"].metric_types)
    from_summary = evaluate_summary(spec, tagged_run["summary"])
    samples = _slo_frame(tagged_run["parquet"], spec)
    assert {"my_tag", "stage"} <= set(samples.columns)
    from_samples = evaluate_samples(spec, samples)
    assert [r.name for r in from_summary] == [r.name for r in from_samples]
    for a, b in zip(from_summary, from_samples, strict=True):
        assert a.status == b.status == SloStatus.PASS, (a, b)
        assert a.k6_failed is False, f"{a.name} did not reach k6's summary"
        if a.aggregation == "avg":
            assert b.observed == pytest.approx(a.observed, rel=1e-12), a.name
        else:
            assert b.observed == a.observed, (a.name, a.observed, b.observed)
    whole = load_samples(tagged_run["parquet"], metrics=["http_req_duration"], columns=["value"])
    assert len(whole) > len(samples[samples["metric"] == "http_req_duration"].query("my_tag == 'x'"))


def test_csv_keeps_the_same_tags(tagged_run):
    """CSV: k6's url/proto/... columns and extra_tags (k=v&k2=v2) land in the same map; a value with '&' survives
    when the piece after it has no '='. Values have 6 decimals in CSV, times whole seconds."""
    assert tagged_run["csv_stats"].metric_types == {}
    assert tagged_run["csv_stats"].extra_tags == tagged_run["stats"].extra_tags
    cols = ["metric", TAGS_COLUMN, *TAG_COLUMNS]
    js = load_samples(tagged_run["parquet"], columns=cols)
    cs = load_samples(tagged_run["csv_parquet"], columns=cols)
    key = lambda f: sorted((str(r["metric"]), json.dumps(r[TAGS_COLUMN], sort_keys=True)) for _, r in f.iterrows())  # noqa: E731
    assert key(js) == key(cs)
    spec = parse_slo({"thresholds": SLOS}, source="test")
    spec.resolve_types(tagged_run["stats"].metric_types)
    for a, b in zip(evaluate_samples(spec, _slo_frame(tagged_run["parquet"], spec)),
                    evaluate_samples(spec, _slo_frame(tagged_run["csv_parquet"], spec)), strict=True):
        assert b.observed == pytest.approx(a.observed, abs=1e-6), a.name


def test_unrecorded_tag_is_left_out_and_reported(tagged_run):
    spec = parse_slo({"thresholds": {"http_req_duration{my_tga:x}": ["p(95)<5000"]}}, source="test")
    frame = _slo_frame(tagged_run["parquet"], spec)
    assert "my_tga" not in frame.columns
    [result] = evaluate_samples(spec, frame)
    assert result.status == SloStatus.NO_DATA and "not recorded" in result.detail
    with pytest.raises(ConfigError, match="tags=\\[name\\]"):
        load_samples(tagged_run["parquet"], columns=["time", "my_tag"])


def _point(metric: str, value: float, tags: dict, second: int = 0) -> bytes:
    return json.dumps({"metric": metric, "type": "Point", "data": {
        "time": f"2026-05-01T10:00:{second:02d}.000001Z", "value": value, "tags": tags}}).encode() + b"\n"


def test_tags_first_seen_late_and_date_like_values_are_kept_as_written(tmp_path, monkeypatch):
    """Chunks of 4 KB: a tag that appears only after many chunks is kept, and a value that looks like a date stays
    text (pyarrow would infer a timestamp for it)."""
    monkeypatch.setattr(samples_mod, "CHUNK_BYTES", 4096)
    lines = [b'{"type":"Metric","data":{"name":"t","type":"trend","contains":"time","thresholds":[],'
             b'"submetrics":null},"metric":"t"}\n']
    lines += [_point("t", float(i), {"scenario": "s", "status": "200"}) for i in range(400)]
    lines += [_point("t", 1000.0 + i, {"scenario": "s", "build": "2026-05-01", "at": "2026-05-01T10:00:00Z"})
              for i in range(50)]
    lines += [_point("t", 2000.0, {"scenario": "s", "late": "yes"})]
    raw = tmp_path / "raw.json"
    raw.write_bytes(b"".join(lines))
    stats = ingest_k6_json(raw, tmp_path / "samples.parquet")
    assert stats.points == 451 and stats.warnings == [] and stats.metric_types == {"t": "trend"}
    assert stats.extra_tags == ["at", "build", "late"]
    frame = load_samples(tmp_path / "samples.parquet", columns=["value"], tags=["build", "at", "late", "status"])
    assert frame["build"].iloc[400] == "2026-05-01" and frame["at"].iloc[449] == "2026-05-01T10:00:00Z"
    assert frame["late"].iloc[-1] == "yes" and frame["late"].isna().sum() == 450
    assert frame["status"].iloc[0] == "200" and frame["status"].isna().iloc[-1]


def test_metric_lines_pyarrow_cannot_type_keep_every_sample_and_tag(tmp_path, monkeypatch):
    """k6 writes ``"submetrics": null`` on most Metric lines and a list on a metric with sub-metrics. When the list
    comes in a later block than a null, pyarrow 26 cannot infer its type (ArrowNotImplementedError; with threads it
    depends on which block is done first): the chunk is then parsed strictly and its new tags found in its Point
    lines alone. Every sample and tag is kept, in order."""
    plain = {"type": "Metric", "metric": "http_reqs", "data": {
        "name": "http_reqs", "type": "counter", "contains": "default", "thresholds": [], "submetrics": None}}
    listed = {"type": "Metric", "metric": "http_req_duration", "data": {
        "name": "http_req_duration", "type": "trend", "contains": "time", "thresholds": [],
        "submetrics": [{"name": "http_req_duration{expected_response:true}", "suffix": "expected_response:true",
                        "tags": {"expected_response": "true"}}]}}
    lines = [json.dumps(plain).encode() + b"\n"]
    lines += [_point("http_req_duration", float(i), {"scenario": "s", "my_tag": "x", "status": "200"})
              for i in range(12_000)]
    lines += [json.dumps(listed).encode() + b"\n", _point("http_req_duration", -1.0, {"scenario": "s", "late": "y"})]
    raw = tmp_path / "raw.json"
    raw.write_bytes(b"".join(lines))
    infer = pj.ParseOptions(explicit_schema=samples_mod._line_schema(), unexpected_field_behavior="infer")
    with pytest.raises(pa.ArrowNotImplementedError):  # what an inferring parse of this file does (one thread)
        pj.read_json(pa.BufferReader(pa.py_buffer(raw.read_bytes())), parse_options=infer,
                     read_options=pj.ReadOptions(block_size=samples_mod.BLOCK_BYTES, use_threads=False))
    read = samples_mod._JsonChunkParser._read

    def as_pyarrow_may(self, buf, options):  # make ingestion meet that failure every time
        if options.unexpected_field_behavior == "infer" and b'"type": "Metric"' in buf.to_pybytes():
            raise pa.ArrowNotImplementedError("JSON conversion to list<item: struct<...>> is not supported")
        return read(self, buf, options)

    monkeypatch.setattr(samples_mod._JsonChunkParser, "_read", as_pyarrow_may)
    stats = ingest_k6_json(raw, tmp_path / "samples.parquet")
    assert (stats.points, stats.warnings) == (12_001, [])
    assert stats.metric_types == {"http_reqs": "counter", "http_req_duration": "trend"}
    assert stats.extra_tags == ["late", "my_tag"]
    frame = load_samples(tmp_path / "samples.parquet", columns=["value"], tags=["my_tag", "late"])
    assert list(frame["value"]) == [*map(float, range(12_000)), -1.0]
    assert set(frame["my_tag"].iloc[:-1]) == {"x"} and frame["late"].iloc[-1] == "y"


def test_fields_that_change_type_in_points_keep_the_samples_with_a_warning(tmp_path):
    """A field that is not k6's own changing type between Point lines (never seen in k6's output) costs only the
    tags first seen in that chunk; the samples stay, in order, and the warning says so."""
    def point(value: float, metadata: object, tags: dict) -> bytes:
        return json.dumps({"metric": "t", "type": "Point", "data": {
            "time": "2026-05-01T10:00:00Z", "value": value, "tags": tags, "metadata": metadata}}).encode() + b"\n"

    raw = tmp_path / "raw.json"
    raw.write_bytes(point(1.0, {"a": "x"}, {"scenario": "s", "new_tag": "v"}) + point(2.0, {"a": {"b": 1}}, {}))
    stats = ingest_k6_json(raw, tmp_path / "samples.parquet")
    assert stats.points == 2 and stats.extra_tags == []
    assert any("could not be typed" in w for w in stats.warnings), stats.warnings
    assert list(load_samples(tmp_path / "samples.parquet")["value"]) == [1.0, 2.0]


def test_older_files_without_the_map_still_load(tagged_run, tmp_path):
    """samples.parquet written before the tags map existed: tag columns load, map tags are simply not recorded."""
    old = tmp_path / "old.parquet"
    pq.write_table(pq.read_table(tagged_run["parquet"]).drop_columns([TAGS_COLUMN]), old)
    frame = load_samples(old, metrics=["http_reqs"], columns=["metric"], tags=["scenario", "my_tag"])
    assert list(frame.columns) == ["metric", "scenario"] and set(frame["scenario"]) == {"tagged"}
    assert sample_tag_names(old) == list(TAG_COLUMNS)


def test_merging_json_and_gzip_csv_keeps_every_tag(tagged_run, tmp_path):
    gz = tmp_path / "raw.csv.gz"
    gz.write_bytes(gzip.compress((tagged_run["dir"] / "raw.csv").read_bytes()))
    stats = ingest_k6_outputs([tagged_run["dir"] / "raw.json", gz], tmp_path / "merged.parquet")
    assert stats.files == 2 and stats.points == tagged_run["stats"].points + tagged_run["csv_stats"].points
    assert stats.metric_types == tagged_run["stats"].metric_types and stats.extra_tags == tagged_run["stats"].extra_tags
    table = pq.read_table(tmp_path / "merged.parquet")
    assert table.schema.field(TAGS_COLUMN).type == pa.map_(pa.string(), pa.string())
    assert stats.first_time <= tagged_run["stats"].first_time and stats.last_time >= tagged_run["stats"].last_time
