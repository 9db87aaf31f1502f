"""The run-vs-baseline judge on a corpus of real k6 runs (tests/data/judge_corpus, made by
tests/make_judge_corpus.py): unchanged runs, +10% / +20% / +50% latency, one endpoint +40%, and 2% errors,
interleaved in time. No k6 runs here: the corpus is committed data."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hardening.analysis import baseline as baseline_mod
from hardening.analysis import ci_outputs, judge, units
from hardening.cli import main
from hardening.errors import ConfigError
from hardening.record.reader import load_run, load_runs
from tests.conftest import hardening_cmd

CORPUS = Path(__file__).parent / "data" / "judge_corpus"
MANIFEST = json.loads((CORPUS / "corpus.json").read_text())
RUNS = MANIFEST["runs"]
BY_KIND = {k: [r for r in RUNS if r["kind"] == k] for k in ("unchanged", "shift", "errors", "endpoint-shift")}


@pytest.fixture
def history(tmp_path) -> Path:
    """A private copy of the corpus history (tests write verdict.json and pins into it)."""
    dest = tmp_path / "runs"
    shutil.copytree(CORPUS / "runs", dest)
    return dest


class Chronological(dict):
    """Verdicts by run id, judged in started_at order; ``folder`` is the history they were stored in."""

    folder: Path


@pytest.fixture(scope="module")
def chronological(tmp_path_factory) -> Chronological:
    """Every run judged in started_at order, each verdict stored in its record as loadtest would."""
    dest = tmp_path_factory.mktemp("chrono") / "runs"
    shutil.copytree(CORPUS / "runs", dest)
    out = Chronological()
    out.folder = dest
    for r in RUNS:
        v = judge.judge_run(dest / r["run_id"])
        judge.write_verdict(dest / r["run_id"], v)
        out[r["run_id"]] = v
    return out


def test_corpus_is_small_interleaved_and_real():
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size < 5e6
    frame = load_runs(CORPUS / "runs")
    assert list(frame["run_id"]) == [r["run_id"] for r in RUNS]  # manifest order = started_at order
    kinds = [r["kind"] for r in RUNS]
    assert kinds[0] == "unchanged" and "shift" in kinds[:5] and kinds[-1] == "unchanged"
    for rid in frame["path"]:
        files = sorted(p.name for p in Path(rid).iterdir())
        assert files == ["k6-summary.json", "run.json", "samples.parquet", "slo.json"]
    assert set(frame["k6_version"]) == {"v1.1.0"} and frame["script_sha256"].nunique() == 1


def test_every_shift_is_flagged_and_no_unchanged_run_is(chronological):
    for r in RUNS:
        v = chronological[r["run_id"]]
        if r["index"] == 0:
            assert v.status == "no_baseline" and not v.regression and v.exit_code == 0
            continue
        if r["kind"] == "unchanged":
            assert not v.regression, (r, v.headline)
            assert abs(v.overall.relative) < 0.05
        elif r["kind"] == "shift":
            assert v.latency_regression and not v.errors.regression, (r, v.headline)
            assert v.overall.regression and v.overall.p_adjusted <= 0.01
            assert v.overall.ci_ms[0] > v.overall.margin_ms
            assert v.overall.relative == pytest.approx(r["factor"] - 1, abs=0.035)
        elif r["kind"] == "errors":
            assert v.errors.regression and not v.latency_regression, (r, v.headline)
            assert v.errors.rate == pytest.approx(0.02) and v.errors.p_value < 1e-6
            assert v.errors.diff_ci[0] > 0.001
            assert v.overall.n == 900 - 18  # failed requests (fast 503s) are not in the latency sample
        else:  # one endpoint 40% slower: its series regresses, whatever the overall Holm-adjusted verdict
            assert v.latency_regression and not v.errors.regression
            regressed = v.to_dict()["latency"]["regressed_series"]
            assert "scenario=checkout" in regressed and "scenario=browse" not in regressed
            checkout = next(s for s in v.series if s.series == "scenario=checkout")
            assert checkout.relative == pytest.approx(0.4, abs=0.05)
        assert v.exit_code == (1 if v.regression else 0)


def test_pooled_baseline_holds_only_unflagged_passing_runs_of_before(chronological):
    kind = {r["run_id"]: r["kind"] for r in RUNS}
    order = {r["run_id"]: r["index"] for r in RUNS}
    for rid, v in chronological.items():
        assert all(kind[b] == "unchanged" for b in v.baseline), (rid, v.baseline)
        assert all(order[b] < order[rid] for b in v.baseline)
        assert len(v.baseline) == min(5, sum(1 for b in RUNS if b["kind"] == "unchanged"
                                             and b["index"] < order[rid]))
        assert v.baseline_mode == ("pooled" if v.baseline else "none")
    last = chronological[RUNS[-1]["run_id"]]
    flagged_passing = [r["run_id"] for r in RUNS if r["kind"] == "shift" and r["status"] == "pass"]
    assert [x["run_id"] for x in last.excluded] == flagged_passing
    assert all("verdict.json" in x["reason"] for x in last.excluded)


def test_drift_two_slow_runs_in_a_row_are_both_flagged(chronological):
    first, second = BY_KIND["shift"][0], BY_KIND["shift"][1]
    assert second["index"] == first["index"] + 1
    v = chronological[second["run_id"]]
    assert v.regression and first["run_id"] not in v.baseline
    assert v.excluded == [{"run_id": first["run_id"], "reason": v.excluded[0]["reason"]}]
    # the old rule (the last passing run as the baseline) would have let it through
    old = judge.judge(CORPUS / "runs" / second["run_id"], CORPUS / "runs", baseline=first["run_id"])
    assert old.baseline_mode == "explicit" and not old.regression


def test_without_verdict_files_flags_are_recomputed(chronological):
    last = RUNS[-1]["run_id"]
    v = judge.judge(CORPUS / "runs" / last, CORPUS / "runs")  # the committed corpus has no verdict.json
    stored = chronological[last]
    assert v.baseline == stored.baseline
    assert [x["run_id"] for x in v.excluded] == [x["run_id"] for x in stored.excluded]
    assert all("judged now" in x["reason"] and "latency overall +" in x["reason"] for x in v.excluded)
    assert v.to_dict()["latency"] == stored.to_dict()["latency"]
    # with no recomputation the slow runs would count as unflagged and join the pool
    lax = judge.judge(CORPUS / "runs" / last, CORPUS / "runs", settings=judge.JudgeSettings(recompute_window=0))
    assert set(lax.baseline) & {r["run_id"] for r in BY_KIND["shift"]}


def test_json_contract(chronological):
    r = BY_KIND["shift"][0]
    d = chronological[r["run_id"]].to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["schema"] == "hardening.verdict/1" and d["run"] == r["run_id"]
    assert d["status"] == "regression" and d["regression"] is True
    lat, err = d["latency"], d["errors"]
    assert lat["regression"] is True and lat["series"] == "overall"
    assert {"p_value", "p_margin", "p_adjusted", "shift_ms", "ci_ms", "relative", "median_ms",
            "baseline_median_ms", "margin_ms", "n", "n_baseline", "regressed_series"} <= set(lat)
    assert lat["ci_ms"][0] < lat["shift_ms"] < lat["ci_ms"][1]
    assert {"regression", "p_value", "rate", "baseline_rate", "failed", "total", "diff", "diff_ci", "source"} <= set(err)
    assert err["source"] == "samples" and err["regression"] is False
    assert d["series"][0]["series"] == "overall" and {s["kind"] for s in d["series"]} == {"overall", "scenario", "name"}
    assert d["settings"]["tolerance"] == 0.05 and d["settings"]["pool_size"] == 5 and d["settings"]["alpha"] == 0.01
    stored = json.loads(judge.verdict_path(chronological.folder / r["run_id"]).read_text())
    assert stored["regression"] is True and "judged_at" in stored


@pytest.mark.parametrize("kind,expect_exit", [("shift", 1), ("unchanged", 0), ("errors", 1), ("endpoint-shift", 1)])
def test_compare_cli_json_junit_markdown_and_exit_code_agree(history, tmp_path, capsys, monkeypatch, kind,
                                                             expect_exit):
    r = BY_KIND[kind][-1]
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit, md, page = tmp_path / "junit.xml", tmp_path / "summary.md", tmp_path / "compare.html"
    code = main(["compare", str(history / r["run_id"]), "--json", "--junit", str(junit), "--markdown", str(md),
                 "--html", str(page)])
    out = json.loads(capsys.readouterr().out)
    assert code == expect_exit == (1 if out["regression"] else 0)
    root = ET.parse(junit).getroot()
    suites = {s.get("name").split(" ")[0]: s for s in root.iter("testsuite")}
    reg = suites["regression"]
    assert (int(reg.get("failures")) > 0) == out["regression"]
    failing = {tc.get("name") for tc in reg.iter("testcase") if tc.find("failure") is not None}
    expected = {f"latency {s}" for s in out["latency"]["regressed_series"]}
    assert failing == expected | ({"errors"} if out["errors"]["regression"] else set())
    slo = suites["SLOs"]
    record = load_run(history / r["run_id"]).record
    assert int(slo.get("tests")) == len(record.slo_results)
    assert int(slo.get("failures")) == len(record.failed_slos)
    text = md.read_text()
    assert summary.read_text() == "earlier step\n" + text  # appended, not replaced
    assert ("**REGRESSION**" in text) == out["regression"]
    assert "<script" not in page.read_text() and r["run_id"] in page.read_text()
    if kind == "errors":
        msgs = [f.get("message") for f in slo.iter("failure")]
        assert any("2.00% vs < 1%" in m for m in msgs)
        assert "2.00% (18/900)" in text


def test_compare_text_has_units_and_scientific_p_values(history, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    r = BY_KIND["shift"][0]
    assert main(["compare", r["run_id"], "--history", str(history)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION (latency)" in out and "exit 1" in out
    assert " ms" in out and "%" in out
    import re

    assert re.search(r"p=\d\.\de[-+]\d\d", out)
    assert re.search(r"\+\d+\.\d\d ms", out)


def test_first_run_has_no_baseline_and_exits_0(history, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    first = RUNS[0]["run_id"]
    assert main(["compare", str(history / first)]) == 0
    assert "no baseline" in capsys.readouterr().out
    assert main(["compare", str(history / first), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "no_baseline" and d["baseline"] == [] and d["regression"] is False
    assert d["latency"]["regression"] is False and d["errors"]["regression"] is False
    junit = ci_outputs.junit_xml(judge.judge_run(history / first))
    assert 'skipped="2"' in junit and "no baseline" in junit


def test_bad_input_exits_2(history, tmp_path, capsys):
    assert main(["compare", "no-such-run", "--history", str(history)]) == 2
    assert "unknown run 'no-such-run'" in capsys.readouterr().err
    some = str(history / RUNS[3]["run_id"])
    assert main(["compare", some, "--baseline", "nope"]) == 2
    assert main(["compare", some, "--baseline", some]) == 2
    assert "own baseline" in capsys.readouterr().err
    assert main(["compare", some, "--tolerance", "-1"]) == 2
    with pytest.raises(ConfigError):
        judge.judge_run(tmp_path / "missing")


def test_help_screens(capsys):
    for argv in (["compare", "--help"], ["baseline", "--help"], ["baseline", "pin", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "5%" in out and "exit codes" in out and "--baseline RUN|auto|pooled" in out


def test_compare_as_a_real_process(history, cli_env):
    cli_env.pop("GITHUB_STEP_SUMMARY", None)
    shift = BY_KIND["shift"][0]["run_id"]
    p = subprocess.run([*hardening_cmd(), "compare", shift, "--history", str(history), "--json"],
                       capture_output=True, text=True, env=cli_env, timeout=120)
    assert p.returncode == 1, p.stderr
    assert json.loads(p.stdout)["latency"]["regression"] is True  # exit 2 on bad input: test_bad_input_exits_2


def test_pinned_baseline(history, capsys):
    first_shift, second_shift = BY_KIND["shift"][0]["run_id"], BY_KIND["shift"][1]["run_id"]
    assert main(["baseline", "pin", first_shift, "--history", str(history)]) == 0
    pins = json.loads((history / judge.PIN_FILE).read_text())["pins"]
    assert [p["run_id"] for p in pins] == [first_shift] and pins[0]["environment"] == "corpus"
    v = judge.judge_run(history / second_shift)
    assert v.baseline_mode == "pinned" and v.baseline == [first_shift] and not v.regression
    pooled = judge.judge_run(history / second_shift, baseline="pooled")
    assert pooled.baseline_mode == "pooled" and pooled.regression
    # re-pinning replaces the pin of the same environment/profile/script
    assert main(["baseline", "pin", RUNS[0]["run_id"], "--history", str(history)]) == 0
    assert [p["run_id"] for p in judge.read_pins(history)] == [RUNS[0]["run_id"]]
    assert main(["baseline", "list", "--history", str(history)]) == 0
    assert RUNS[0]["run_id"] in capsys.readouterr().out
    assert main(["baseline", "unpin", second_shift, "--history", str(history)]) == 0
    assert judge.read_pins(history) == []
    assert judge.judge_run(history / second_shift).baseline_mode == "pooled"
    # a pin to a run that is gone falls back to the pooled baseline, and says so
    judge.pin_baseline(history, RUNS[1]["run_id"])
    shutil.rmtree(history / RUNS[1]["run_id"])
    v = judge.judge_run(history / second_shift)
    assert v.baseline_mode == "pooled" and any("pinned baseline" in w for w in v.warnings)


def test_report_api_uses_the_same_judge(history):
    r = BY_KIND["shift"][0]
    run = load_run(history / r["run_id"])
    result = baseline_mod.against_baseline(run, load_runs(history))
    verdict = judge.judge_run(history / r["run_id"])
    assert result.headline == verdict.headline and result.headline.startswith("REGRESSION (latency)")
    assert result.regression and result.baseline_ids == verdict.baseline
    assert result.baseline_id == verdict.baseline[-1]
    assert result.p95_change == pytest.approx(0.1, abs=0.06)
    frame = baseline_mod.comparison_frame(result)
    assert frame["check"].iloc[0] == "latency overall" and frame["check"].iloc[-1] == "errors"
    assert frame.loc[0, "result"] == "High" and "ms" in frame.loc[0, "change"]
    assert result.to_dict()["headline"] == result.headline
    legacy = baseline_mod.BaselineResult(None, "no history given: no baseline comparison", None)
    assert legacy.to_dict()["headline"].startswith("no history") and baseline_mod.comparison_frame(legacy).empty
    first = baseline_mod.against_baseline(load_run(history / RUNS[0]["run_id"]), load_runs(history))
    assert first.headline.startswith("no baseline:") and first.baseline_id is None


def test_runs_without_raw_samples_fall_back_to_counts(history):
    r = BY_KIND["errors"][0]
    (history / r["run_id"] / "samples.parquet").unlink()
    v = judge.judge_run(history / r["run_id"])
    assert not v.overall.tested and "no raw samples" in v.overall.note
    assert v.errors.tested and v.errors.source == "k6-summary" and v.errors.regression
    assert (v.errors.failed, v.errors.total) == (18, 900)


def test_error_counts_come_from_samples_not_seconds(chronological):
    v = chronological[BY_KIND["errors"][0]["run_id"]]
    assert (v.errors.failed, v.errors.total, v.errors.source) == (18, 900, "samples")
    assert v.errors.baseline_failed == 0 and v.errors.baseline_total == 900 * len(v.baseline)


def test_compare_errors_tolerance_and_significance():
    s = judge.JudgeSettings()
    assert judge.compare_errors(18, 900, 0, 4500, s).regression
    assert not judge.compare_errors(1, 900, 0, 4500, s).regression  # one failure: not significant
    small = judge.compare_errors(60, 100_000, 20, 100_000, s)  # significant, but +0.04 pp < 0.1 pp
    assert small.p_value < 0.01 and not small.regression
    assert not judge.compare_errors(0, 0, 0, 10, s).tested


def test_formatting_is_honest():
    assert units.pvalue(1.234e-4) == "1.2e-04"
    assert units.slo_comparison("rate", "rate", "<", 0.0147, 0.01) == "1.47% vs < 1%"
    assert units.slo_comparison("rate", "rate", "<", 0.01004, 0.01) == "1.004% vs < 1%"
    assert units.slo_comparison("trend", "p(95)", "<", 800.001, 800) == "800.001 ms vs < 800 ms"
    assert units.slo_comparison("trend", "p(95)", "<", None, 800) == "no data vs < 800 ms"
    assert units.pct(0.00012) == "0.012%" and units.ms(3.14159, sign=True) == "+3.14 ms"


def test_step_summary_only_when_set(tmp_path):
    assert ci_outputs.append_step_summary("x", env={}) is None
    target = tmp_path / "s.md"
    ci_outputs.append_step_summary("one", env={"GITHUB_STEP_SUMMARY": str(target)})
    ci_outputs.append_step_summary("two\n", env={"GITHUB_STEP_SUMMARY": str(target)})
    assert target.read_text() == "one\ntwo\n"
