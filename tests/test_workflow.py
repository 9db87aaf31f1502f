"""The hardened GitHub Actions workflow: valid structure, no high zizmor findings, least privilege, pins."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hardening.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci-cd-hardened.yml"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_zizmor_offline_has_no_high_findings():
    proc = subprocess.run([str(VENV_BIN / "zizmor"), "--offline", "--format", "json", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip().startswith("["), proc.stderr
    findings = json.loads(proc.stdout)
    high = [f for f in findings if f["determinations"]["severity"] == "High"]
    assert not high, [f["ident"] for f in high]


def test_check_jsonschema_github_workflows():
    proc = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           str(WORKFLOW)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_least_privilege_and_pinned_actions(workflow):
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name} must declare its permissions"
        assert perms.get("contents") == "read", name
        assert set(perms) <= {"contents", "issues"}, name
        assert all(v in ("read", "write") for v in perms.values())
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
    uses = {s["uses"].split("@")[0] for j in workflow["jobs"].values() for s in j.get("steps", []) if "uses" in s}
    assert {"actions/checkout", "actions/setup-python", "actions/upload-artifact"} <= uses


def test_seed_flow_jobs_environment_and_rollback(workflow):
    jobs = workflow["jobs"]
    assert list(jobs) == ["build-and-test", "load-test", "deploy-backend", "deploy-frontend", "rollback"]
    env_expr = "${{ github.ref == 'refs/heads/main' && 'production' || 'staging' }}"
    for name in ("deploy-backend", "deploy-frontend", "rollback"):
        assert jobs[name]["environment"]["name"] == env_expr
    assert jobs["rollback"]["if"].startswith("failure()")
    assert "redis" in jobs["load-test"]["services"]
    uploads = [s for j in jobs.values() for s in j["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and all(s["with"]["retention-days"] == 30 for s in uploads)
    # Secrets never appear inside run: scripts (template injection); they come in through env.
    for job in jobs.values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")


def test_workflow_calls_existing_cli_commands(workflow):
    """Every `hardening <command> [<action>]` the workflow runs is a command the CLI registers."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    scripts = "\n".join(s.get("run", "") for j in workflow["jobs"].values() for s in j["steps"])
    used = re.findall(r"\bhardening ([a-z-]+)(?: ([a-z-]+))?", scripts)
    assert {c for c, _ in used} >= {"artifact", "env", "loadtest", "redis", "report", "deploy", "rollback"}
    for command, action in used:
        assert command in commands, command
        sub = commands[command]
        actions = [a for a in sub._actions if getattr(a, "choices", None) and a.dest != "help"]
        if actions and action and not action.startswith("-"):
            assert action in actions[0].choices, f"hardening {command} {action}"


def test_test_job_runs_like_ci_run(workflow):
    """The workflow's tests run as `.ci/run` runs them (Debian, redis-server + chromium installed, `make test`),
    so the Redis 7.0 and real-browser tests run in CI instead of skipping."""
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "apt-get update" in ci_run and "make test" in ci_run
    assert re.search(r"apt-get install .*\bmake redis-server redis-tools chromium\b", ci_run)
    job = workflow["jobs"]["build-and-test"]
    image = job["container"]["image"]
    assert re.fullmatch(r"python:3\.1[1-9]-bookworm@sha256:[0-9a-f]{64}", image), image
    runs = [s.get("run", "").strip() for s in job["steps"]]
    assert ".ci/run" in runs
    assert not any("pytest" in r for r in runs), "tests run only through .ci/run"
    assert runs.index(".ci/run") < next(i for i, s in enumerate(job["steps"]) if s.get("id") == "backend")
