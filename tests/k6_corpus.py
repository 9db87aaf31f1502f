"""The k6 script corpus in tests/k6_scripts: each script with what a plain ``k6 run`` of it exits with
against the loopback target (tests/k6_target.py). tests/test_wrapper.py runs every script plainly and
asserts that exit code; tests/test_any_script.py compares hardening's exit code with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "k6_scripts"


@dataclass(frozen=True)
class Case:
    script: str
    exit_code: int  # of a plain `k6 run` against the loopback target
    extra: dict  # SLO-side thresholds added through the wrapper (always met)
    stdout_has: str = ""
    parallel: bool = True  # run plain + 2 wrappers at once; False if 3x the load breaks its latency SLOs


CASES = [
    Case("custom_metrics.js", 0, {"my_trend{scenario:default}": ["max>=0"], "my_gauge": ["value>=0"]}),
    # its 'http2 is used' check cannot pass over plain http: the script's own abortOnFail ends it
    Case("thresholds_readme_example.js", 99, {"http_req_duration{group:::Static Assets}": ["max>=0"]}),
    # ~220 req/s from 110 VUs: three at once on 2 cores push p(95) past its own 250 ms threshold
    Case("scenarios_thresholds.js", 0, {"http_req_duration{scenario:my_web_test}": ["p(95)>=0"],
                                        "http_reqs{test_type:api}": ["count>0"]}, parallel=False),
    Case("handle_summary_stdout.js", 0, {"http_req_duration{scenario:default}": ["max>=0"]},
         stdout_has="The median latency was"),
    Case("handle_summary_json.js", 0, {"http_req_duration{scenario:default}": ["max>=0"]}),
    Case("k6_new_minimal.js", 0, {"checks{scenario:default}": ["rate>=0"]}),
    Case("k6_new_protocol.js", 0, {"http_req_duration{method:POST}": ["max>=0"], "http_req_failed": ["rate<0.5"]}),
]

PLAIN_EXIT = {case.script: case.exit_code for case in CASES}
