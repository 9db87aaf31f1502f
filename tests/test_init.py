"""``hardening init``: starter SLO file, k6 script and hardened workflow; never overwrites anything."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from hardening import __version__
from hardening.cli import build_parser
from hardening.init import STARTER_FILES
from hardening.loadtest.slo import load_slo
from tests.conftest import VENV_BIN, hardening_cmd

SLO, SCRIPT, WORKFLOW = "loadtest/slo.json", "loadtest/script.js", ".github/workflows/hardening.yml"


def _init(cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*hardening_cmd(), "init"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def starter(tmp_path_factory) -> Path:
    """A folder after one ``hardening init`` (the real CLI, run there)."""
    root = tmp_path_factory.mktemp("init")
    proc = _init(root, {"PATH": f"{VENV_BIN}:/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def test_init_writes_the_three_files_and_says_what_next(tmp_path, cli_env):
    proc = _init(tmp_path, cli_env)
    assert proc.returncode == 0, proc.stderr
    assert set(_snapshot(tmp_path)) == {SLO, SCRIPT, WORKFLOW}
    for name in (SLO, SCRIPT, WORKFLOW):
        assert re.search(rf"^\s*wrote\s+{re.escape(name)}$", proc.stdout, re.M), proc.stdout
    assert "hardening loadtest --base-url" in proc.stdout and "--script loadtest/script.js" in proc.stdout
    assert "hardening report --run" in proc.stdout


def test_second_init_writes_nothing_and_changes_nothing(tmp_path, cli_env):
    assert _init(tmp_path, cli_env).returncode == 0
    (tmp_path / SLO).write_text('{"thresholds": {"http_req_failed": ["rate<0.05"]}}\n')  # the user's edit
    before = _snapshot(tmp_path)
    mtimes = {p: (tmp_path / p).stat().st_mtime_ns for p in before}
    proc = _init(tmp_path, cli_env)
    assert proc.returncode == 0, proc.stderr
    assert _snapshot(tmp_path) == before
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in before} == mtimes
    assert proc.stdout.count("skipped (exists)") == 3 and "wrote" not in proc.stdout


def test_init_fills_in_only_what_is_missing(tmp_path, cli_env):
    mine = b"// my own script\n"
    (tmp_path / "loadtest").mkdir()
    (tmp_path / SCRIPT).write_bytes(mine)
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "workflows").symlink_to(tmp_path / "nowhere")  # dangling: left alone too
    proc = _init(tmp_path, cli_env)
    assert (tmp_path / SCRIPT).read_bytes() == mine
    assert re.search(rf"skipped \(exists\)\s+{re.escape(SCRIPT)}", proc.stdout)
    assert re.search(rf"wrote\s+{re.escape(SLO)}", proc.stdout)
    # .github/workflows is a dangling link, so the workflow cannot be written: said, exit 2, nothing else touched
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert WORKFLOW in proc.stderr and not (tmp_path / "nowhere").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_init_offers_no_force():
    init = next(a for a in build_parser()._actions if a.dest == "command").choices["init"]
    assert {opt for a in init._actions for opt in a.option_strings} == {"-h", "--help"}


def test_starter_slo_parses(starter):
    spec = load_slo(starter / SLO)
    assert {o.metric for o in spec.objectives} >= {"http_req_failed", "http_req_duration", "checks"}


def test_starter_script_passes_k6_inspect_with_the_slo_thresholds(starter):
    proc = subprocess.run([str(VENV_BIN / "k6"), "inspect", SCRIPT], cwd=starter, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    options = json.loads(proc.stdout)
    slo = json.loads((starter / SLO).read_text())
    assert set(options["thresholds"]) == set(slo["thresholds"])
    script = (starter / SCRIPT).read_text()
    assert "__ENV.BASE_URL" in script and "export default function" in script


def test_starter_workflow_passes_zizmor_offline(starter):
    proc = subprocess.run([str(VENV_BIN / "zizmor"), "--offline", "--format", "json", str(starter / WORKFLOW)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip().startswith("["), proc.stderr
    assert json.loads(proc.stdout) == [], proc.stdout  # no finding at any severity


def test_starter_workflow_passes_check_jsonschema(starter):
    proc = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           str(starter / WORKFLOW)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_starter_workflow_is_least_privilege_pinned_and_calls_real_options(starter):
    wf = yaml.safe_load((starter / WORKFLOW).read_text())
    assert wf["permissions"] == {"contents": "read"}
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    for job in wf["jobs"].values():
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        assert "${{" not in step.get("run", ""), step.get("name")  # no template injection into scripts
    assert {s["uses"].split("@")[0] for s in steps if "uses" in s} == {
        "actions/checkout", "actions/setup-python", "actions/upload-artifact"}
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert f'pip install "hardening=={__version__}"' in scripts
    # every `hardening ...` line the workflow runs parses with this CLI (options exist, values fit)
    parser = build_parser()
    shell_values = {"BASE_URL": "http://127.0.0.1:8080", "LOADTEST_PROFILE": "demo", "run_dir": "data/runs/x"}
    lines = re.findall(r"^\s*(hardening \S.*)$", scripts.replace("\\\n", " "), re.M)
    assert [line.split()[1] for line in lines] == ["loadtest", "report"]
    for line in lines:
        argv = shlex.split(re.sub(r"\$(\w+)", lambda m: shell_values[m.group(1)], line))[1:]
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"the starter workflow runs `{line}`, which this CLI rejects")
    assert "--junit" in scripts


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.slow
def test_starter_runs_under_hardening_loadtest(starter, tmp_path, cli_env):
    """The starter, as written, is a working load test: a real k6 run against a loopback service passes."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        proc = subprocess.run(
            [*hardening_cmd(), "loadtest", "--base-url", base, "--script", str(starter / SCRIPT),
             "--slo", str(starter / SLO), "--profile", "quick", "--out", str(tmp_path / "runs"), "--no-progress"],
            cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (record,) = (tmp_path / "runs").glob("*/run.json")
    run = json.loads(record.read_text())
    assert run["status"] == "pass"
    assert {r["metric"] for r in run["slo_results"]} >= {"http_req_failed", "http_req_duration", "checks"}


def test_starter_files_are_the_package_data():
    from hardening.init import STARTER

    assert {STARTER_FILES[name] for name in (SLO, SCRIPT, WORKFLOW)} == {
        p.name for p in STARTER.iterdir() if p.is_file()}
