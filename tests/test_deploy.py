"""Deploys end to end: real demo service + real Redis for the local backend, stub CLIs for SaaS backends."""

from __future__ import annotations

import json
import multiprocessing
import random
import subprocess
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from hardening.demo.embedded_redis import EmbeddedRedis
from hardening.demo.service import DemoService
from hardening.deploy import artifacts
from hardening.deploy.backends.local import LocalBackend
from hardening.deploy.health import HealthPolicy, Probe, wait_healthy
from hardening.deploy.incident import Incident, open_issue
from hardening.deploy.ledger import Deployment, Ledger, new_id, utcnow
from hardening.net import free_port
from tests.conftest import hardening_cmd

STUBS = Path(__file__).resolve().parent / "stubs"
REDIS_PASSWORD = "Redis-pw-Kx93vQ7"
FAST_HEALTH = ["--health-grace", "0.2", "--health-interval", "0.2", "--health-max-interval", "0.4",
               "--health-successes", "2", "--health-deadline", "6", "--health-timeout", "1", "--health-attempts", "10"]


# ------------------------------------------------------------------ helpers (also used by test_secrets_scan)
def make_artifact(out: Path, commit7: str, minute: int, service_env: str | None = None,
                  service: str = "backend") -> artifacts.BuildResult:
    """A tiny release; ``service_env`` (e.g. ``DEMO_FAULT_UNHEALTHY=1``) makes a bad version."""
    src = out.parent / f"src-{service}-{commit7}"
    src.mkdir(parents=True, exist_ok=True)
    (src / "app.txt").write_text(f"release {commit7}\n")
    files = [Path("app.txt")]
    if service_env is not None:
        (src / "service.env").write_text(service_env)
        files.append(Path("service.env"))
    return artifacts.build_artifact(service, files, out, commit=commit7 + "0" * 33, base=src,
                                    when=datetime(2026, 1, 14, 15, minute, tzinfo=UTC), branch="main",
                                    actor="octocat")


def run_cli(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*hardening_cmd(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read())


def ledger_events(path: Path, dep_id: str) -> list[str]:
    return [e["status"] for e in Ledger(path).events() if e["id"] == dep_id]


@pytest.fixture
def secured_redis():
    """A real Redis/Valkey with a password, so REDIS_URL carries a secret like in production."""
    with EmbeddedRedis(extra_args=["--requirepass", REDIS_PASSWORD]) as server:
        server.secret_url = f"redis://default:{REDIS_PASSWORD}@127.0.0.1:{server.port}/0"
        yield server


@pytest.fixture
def local_root(tmp_path):
    """Deploy root of the local backend; the service it starts is stopped by pid afterwards."""
    root = tmp_path / "deploy" / "staging"
    yield root
    LocalBackend(root).stop()


# ------------------------------------------------------------------ ledger
def _append_many(path: str, worker: int, count: int) -> None:
    ledger = Ledger(Path(path))
    for i in range(count):
        ledger.append(Deployment(id=f"dep-w{worker}-{i}", env="staging", service="backend",
                                 version=f"backend-20260101-000000-{worker:07d}", started_at=utcnow(),
                                 reason="x" * random.randint(10, 3000)))


def test_concurrent_ledger_writers_lose_nothing(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    threads = [threading.Thread(target=_append_many, args=(str(path), 10 + t, 40)) for t in range(2)]
    for t in threads:
        t.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for t in threads:
        t.join(60)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4 * 60 + 2 * 40
    ids = {json.loads(line)["id"] for line in lines}  # every line is whole JSON
    assert len(ids) == len(lines)


def test_ledger_state_and_truncated_line(tmp_path):
    ledger = Ledger(tmp_path / "l.jsonl")
    a = Deployment(id=new_id(), env="production", service="backend", version="backend-20260101-000000-aaaaaaa",
                   started_at="2026-01-01T00:00:00+00:00")
    ledger.append(a)
    ledger.update(a, status="green", finished_at="2026-01-01T00:01:00+00:00")
    with open(ledger.path, "a") as fh:
        fh.write('{"id": "dep-cut", "status": "gre')  # a writer killed mid-line
    assert [d.status for d in ledger.states()] == ["green"]
    assert ledger.last_green("production", "backend").id == a.id
    assert ledger.read().warnings == [f"{ledger.path}:3: unreadable ledger line skipped"]
    with pytest.raises(Exception, match="status"):
        ledger.append({"id": "x", "status": "done"})


# ------------------------------------------------------------------ health policy
def test_health_needs_consecutive_successes_and_backs_off_with_cap():
    answers = iter([False, False, False, True, False, True, True, True])
    waits: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    policy = HealthPolicy(grace_s=1, interval_s=1, max_interval_s=3, backoff=2, jitter=0.1, successes=3,
                          deadline_s=100, max_attempts=20)
    result = wait_healthy("http://x/health", policy, probe=lambda: Probe(next(answers), "t"), sleep=sleep,
                          clock=lambda: now[0], rng=random.Random(1))
    assert result.ok and result.attempts == 8
    assert waits[0] == 1  # grace period
    backoffs = waits[1:]
    assert 0.9 <= backoffs[0] <= 1.1 and 1.8 <= backoffs[1] <= 2.2 and 2.7 <= backoffs[2] <= 3.3  # capped at 3
    assert all(0.9 <= w <= 1.1 for w in backoffs[3:])  # reset after a success


def test_health_gives_up_at_max_attempts_and_deadline():
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    policy = HealthPolicy(grace_s=0, interval_s=0.01, max_interval_s=0.01, jitter=0, successes=1,
                          deadline_s=1000, max_attempts=20)
    result = wait_healthy("u", policy, probe=lambda: Probe(False, "HTTP 503"), sleep=sleep, clock=lambda: now[0])
    assert not result.ok and result.attempts == 20 and "20 attempts" in result.reason
    now[0] = 0.0
    slow = HealthPolicy(grace_s=0, interval_s=10, max_interval_s=10, jitter=0, successes=1, deadline_s=25)
    result = wait_healthy("u", slow, probe=lambda: Probe(False, "HTTP 503"), sleep=sleep, clock=lambda: now[0])
    assert not result.ok and result.attempts == 3 and "deadline" in result.reason


# ------------------------------------------------------------------ local backend, end to end
def _local_env(cli_env: dict[str, str], redis_url: str) -> dict[str, str]:
    env = {**cli_env, "REDIS_URL": redis_url, "JWT_SECRET": "jwt-planted-Vb71s0Qe"}
    env.pop("GH_TOKEN", None)
    env.pop("GITHUB_TOKEN", None)
    return env


def _local_args(root: Path, port: int) -> list[str]:
    return ["--env", "staging", "--backend", "local", "--root", str(root), "--port", str(port),
            "--ledger", "ledger.jsonl", "--artifacts-dir", "artifacts", "--incident-dir", "incidents", *FAST_HEALTH]


@pytest.mark.slow
def test_local_bad_version_is_rolled_back_automatically(tmp_path, secured_redis, cli_env, local_root):
    env = _local_env(cli_env, secured_redis.secret_url)
    port = free_port()
    good = make_artifact(tmp_path / "artifacts", "1111111", 0)
    bad = make_artifact(tmp_path / "artifacts", "2222222", 5, service_env="DEMO_FAULT_UNHEALTHY=1\n")

    first = run_cli(["deploy", "--artifact", str(good.tarball), *_local_args(local_root, port)], tmp_path, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert get_json(f"http://127.0.0.1:{port}/version")["version"] == good.version

    second = run_cli(["deploy", "--artifact", str(bad.tarball), *_local_args(local_root, port)], tmp_path, env)
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"rolled back to {good.version}" in second.stderr
    # The service answers on the previous version, from the previous release directory.
    assert get_json(f"http://127.0.0.1:{port}/version")["version"] == good.version
    assert get_json(f"http://127.0.0.1:{port}/health")["status"] == "ok"
    assert (local_root / "current").readlink() == Path("releases") / good.version

    ledger = Ledger(tmp_path / "ledger.jsonl")
    states = ledger.states()
    failed = next(d for d in states if d.version == bad.version)
    assert ledger_events(ledger.path, failed.id) == ["in_progress", "failed", "rolled_back"]
    assert failed.status == "rolled_back" and "health check failed" in failed.reason
    rollback = next(d for d in states if d.rollback_of == failed.id)
    assert rollback.status == "green" and rollback.version == good.version
    assert failed.previous == next(d for d in states if d.version == good.version and not d.rollback_of).id

    incident = tmp_path / failed.incident
    text = incident.read_text()
    assert "Automatic Rollback Triggered" in text and f"**Backend Artifact:** {bad.version}" in text
    assert "**Rollback Target:**" in text and good.version in text and "**Actor:** @octocat" in text
    for secret in (REDIS_PASSWORD, "jwt-planted-Vb71s0Qe"):
        assert secret not in text
        assert secret not in ledger.path.read_text()
        assert secret not in second.stdout + second.stderr


@pytest.mark.slow
def test_local_post_check_failure_and_manual_rollback(tmp_path, redis_server, cli_env, local_root):
    env = _local_env(cli_env, redis_server.url)
    port = free_port()
    v1 = make_artifact(tmp_path / "artifacts", "1111111", 0)
    v2 = make_artifact(tmp_path / "artifacts", "2222222", 5)
    v3 = make_artifact(tmp_path / "artifacts", "3333333", 9)
    args = _local_args(local_root, port)
    assert run_cli(["deploy", "--artifact", str(v1.tarball), *args], tmp_path, env).returncode == 0

    # Healthy, but the post-deploy check (e.g. an SLO load test) fails: roll back.
    check = (f"{sys.executable} -c \"import os, sys; "
             "sys.exit(3 if os.environ['BASE_URL'].startswith('http://127.0.0.1') else 4)\"")
    post = run_cli(["deploy", "--artifact", str(v2.tarball), "--post-check", check, *args], tmp_path, env)
    assert post.returncode == 1 and "exited 3" in post.stderr, post.stdout + post.stderr
    assert get_json(f"http://127.0.0.1:{port}/version")["version"] == v1.version

    assert run_cli(["deploy", "--artifact", str(v3.tarball), *args], tmp_path, env).returncode == 0
    assert get_json(f"http://127.0.0.1:{port}/version")["version"] == v3.version
    manual = run_cli(["rollback", "--service", "backend", *args], tmp_path, env)
    assert manual.returncode == 0, manual.stdout + manual.stderr
    assert get_json(f"http://127.0.0.1:{port}/version")["version"] == v1.version
    states = {d.version: d for d in Ledger(tmp_path / "ledger.jsonl").states() if not d.rollback_of}
    assert states[v3.version].status == "rolled_back" and states[v2.version].status == "rolled_back"
    unknown = run_cli(["rollback", "--service", "backend", "--to", "backend-20990101-000000-fffffff", *args],
                      tmp_path, env)
    assert unknown.returncode == 2 and "green versions" in unknown.stderr


# ------------------------------------------------------------------ command backends against stub CLIs
def _stub_env(cli_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**cli_env, "PATH": f"{STUBS}:{cli_env['PATH']}", "HARDENING_STUB_LOG": str(tmp_path / "stub.jsonl"),
           **extra}
    env.pop("GH_TOKEN", None)
    return env


def _stub_calls(tmp_path: Path) -> list[dict]:
    path = tmp_path / "stub.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_vercel_backend_rolls_back_with_vercel_rollback(tmp_path, redis_server, cli_env):
    with DemoService(redis_url=redis_server.url) as live:
        env = _stub_env(cli_env, tmp_path, VERCEL_TOKEN="vercel-planted-tok-81", STUB_VERCEL_ADDRESS=live.base_url)
        v1 = make_artifact(tmp_path / "artifacts", "1111111", 0, service="frontend")
        v2 = make_artifact(tmp_path / "artifacts", "2222222", 5, service="frontend")
        args = ["--env", "production", "--backend", "vercel", "--ledger", "ledger.jsonl", "--no-issue",
                "--incident-dir", "incidents", *FAST_HEALTH]
        first = run_cli(["deploy", "--artifact", str(v1.tarball), *args], tmp_path, env)
        assert first.returncode == 0, first.stdout + first.stderr
        dead = f"http://127.0.0.1:{free_port()}"
        env_bad = {**env, "STUB_VERCEL_ADDRESS": dead}
        second = run_cli(["deploy", "--artifact", str(v2.tarball), *args], tmp_path, env_bad)
    assert second.returncode == 1, second.stdout + second.stderr
    calls = [c["argv"] for c in _stub_calls(tmp_path)]
    assert calls[0][0] == "deploy" and "--prod" in calls[0] and "--yes" in calls[0]
    assert calls[-1] == ["rollback", live.base_url]
    assert all(c["token_in_env"] for c in _stub_calls(tmp_path))
    assert "vercel-planted-tok-81" not in (tmp_path / "stub.jsonl").read_text()


class _GraphQL(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _GraphQL.received.append({"body": body, "auth": self.headers.get("Authorization", "")})
        payload = json.dumps({"data": {"deploymentRollback": True}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_railway_backend_redeploys_or_uses_graphql_rollback(tmp_path, redis_server, cli_env):
    v1 = make_artifact(tmp_path / "artifacts", "1111111", 0)
    v2 = make_artifact(tmp_path / "artifacts", "2222222", 5)
    with DemoService(redis_url=redis_server.url) as live:
        env = _stub_env(cli_env, tmp_path, RAILWAY_TOKEN="railway-planted-tok-77")
        args = ["--env", "staging", "--backend", "railway", "--url", live.base_url, "--ledger", "ledger.jsonl",
                "--no-issue", "--incident-dir", "incidents", *FAST_HEALTH]
        assert run_cli(["deploy", "--artifact", str(v1.tarball), *args], tmp_path,
                       {**env, "STUB_RAILWAY_ID": "11111111-aaaa-4bbb-8ccc-000000000001"}).returncode == 0
        # v2 deploys but its health check fails (a dead URL): without an API token -> `railway up` of v1.
        bad = [a if a != live.base_url else f"http://127.0.0.1:{free_port()}" for a in args]
        bad += ["--health-attempts", "3"]  # nothing listens there: 3 refused probes say it as well as 10
        failed = run_cli(["deploy", "--artifact", str(v2.tarball), *bad], tmp_path, env)
        assert failed.returncode == 1
        calls = [c["argv"] for c in _stub_calls(tmp_path)]
        assert [c[0] for c in calls] == ["up", "up", "up"]
        assert calls[0][2:] == ["--service", "backend", "--environment", "staging", "--ci"]

        # With RAILWAY_API_TOKEN and the recorded deployment id: GraphQL deploymentRollback(id).
        server = HTTPServer(("127.0.0.1", 0), _GraphQL)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            gql = {**env, "RAILWAY_API_TOKEN": "railway-api-planted-55",
                   "HARDENING_RAILWAY_GRAPHQL": f"http://127.0.0.1:{server.server_port}/graphql/v2"}
            v3 = make_artifact(tmp_path / "artifacts", "3333333", 9)
            assert run_cli(["deploy", "--artifact", str(v3.tarball), *bad], tmp_path, gql).returncode == 1
        finally:
            server.shutdown()
    assert len(_GraphQL.received) == 1
    request = _GraphQL.received[0]
    assert "deploymentRollback" in request["body"]["query"]
    assert request["body"]["variables"] == {"id": "11111111-aaaa-4bbb-8ccc-000000000001"}
    assert request["auth"] == "Bearer railway-api-planted-55"


def test_gh_issue_is_created_once_then_commented(tmp_path):
    env = {"PATH": f"{STUBS}:/usr/bin:/bin", "GH_TOKEN": "gh-planted-tok-99", "GITHUB_REPOSITORY": "o/r",
           "HARDENING_STUB_LOG": str(tmp_path / "stub.jsonl")}
    inc = Incident(env="production", service="backend", failed_id="dep-1", failed_version="backend-x",
                   reason="health check failed")
    body = tmp_path / "body.md"
    body.write_text("incident")
    assert open_issue(inc, body, environ={**env, "GH_TOKEN": ""}).action == "skipped"
    assert open_issue(inc, body, environ=env).action == "created"
    existing = json.dumps([{"number": 7, "title": inc.title}])
    assert open_issue(inc, body, environ={**env, "STUB_GH_ISSUES": existing}).action == "commented"
    calls = [c["argv"] for c in _stub_calls(tmp_path)]
    assert calls[0][:2] == ["issue", "list"] and "--search" in calls[0]
    assert calls[1][:2] == ["issue", "create"] and calls[1][calls[1].index("-t") + 1] == inc.title
    assert calls[1][-2:] == ["-R", "o/r"]
    assert calls[3][:3] == ["issue", "comment", "7"]
    assert sum(c[:2] == ["issue", "create"] for c in calls) == 1
