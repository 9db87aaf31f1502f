"""Deploy faults (issue 12): prune vs the rollback target, ledger faults, a failed first deploy, secrets in
post-check output. Real ledger files, real artifacts, the real demo service for the local backend."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.cli import main
from hardening.deploy import artifacts, dora
from hardening.deploy.backends import Outcome, Release
from hardening.deploy.backends.local import LocalBackend
from hardening.deploy.deployer import Deployer, DeployOptions
from hardening.deploy.ledger import Deployment, Ledger
from hardening.errors import ConfigError, InfraError
from hardening.net import free_port
from tests.test_deploy import FAST_HEALTH, make_artifact, run_cli


def build(out: Path, service: str, commit7: str, day: int) -> artifacts.BuildResult:
    src = out.parent / f"src-{service}-{commit7}"
    src.mkdir(parents=True, exist_ok=True)
    (src / "app.txt").write_text(f"{service} {commit7}\n")
    return artifacts.build_artifact(service, [Path("app.txt")], out, commit=commit7 + "0" * 33, base=src,
                                    when=datetime(2026, 1, day, 12, tzinfo=UTC))


def line(dep_id: str, version: str, status: str, started: str, finished: str | None = None,
         service: str = "backend", env: str = "staging") -> str:
    return json.dumps({"id": dep_id, "env": env, "service": service, "version": version, "status": status,
                       "started_at": started, "finished_at": finished})


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(x + "\n" for x in lines))
    return path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """The real CLI entry point, in-process (exit code, stdout, stderr)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ 1. prune keeps the rollback target
@pytest.fixture
def old_artifacts(tmp_path):
    """Two services, every artifact older than 30 days (the state that used to lose everything)."""
    out = tmp_path / "artifacts"
    built = {
        "b1": build(out, "backend", "1111111", 1), "b2": build(out, "backend", "2222222", 2),
        "b3": build(out, "backend", "3333333", 3), "f1": build(out, "frontend", "4444444", 1),
        "f2": build(out, "frontend", "5555555", 4),
    }
    return out, built


def test_prune_never_deletes_each_services_newest_artifact(old_artifacts):
    out, built = old_artifacts
    removed = artifacts.prune(out, 30, now=datetime(2026, 6, 1, tzinfo=UTC))
    gone = {p.name.split(".")[0] for p in removed}
    assert gone == {built["b1"].version, built["b2"].version, built["f1"].version}
    assert built["b3"].tarball.exists() and built["f2"].tarball.exists()
    assert artifacts.newest_versions(out) == {"backend": built["b3"].version, "frontend": built["f2"].version}


def test_prune_cli_refuses_without_a_readable_ledger(old_artifacts, tmp_path, capsys):
    out, _ = old_artifacts
    before = sorted(p.name for p in out.iterdir())
    missing = tmp_path / "no" / "ledger.jsonl"
    code, _, err = cli(capsys, "artifact", "prune", "--dir", str(out), "--keep-days", "30",
                       "--ledger", str(missing))
    assert code == 2 and str(missing) in err and "--no-ledger" in err and "does not exist" in err
    garbage = write_lines(tmp_path / "garbage.jsonl", ["not json", '{"id": "x"}'])
    code, _, err = cli(capsys, "artifact", "prune", "--dir", str(out), "--ledger", str(garbage))
    assert code == 2 and str(garbage) in err and "no usable line" in err and "--no-ledger" in err
    unreadable = tmp_path / "dir.jsonl"
    unreadable.mkdir()
    code, _, err = cli(capsys, "artifact", "prune", "--dir", str(out), "--ledger", str(unreadable))
    assert code == 2 and "cannot be read" in err and "--no-ledger" in err
    assert sorted(p.name for p in out.iterdir()) == before, "a refused prune deletes nothing"


def test_prune_cli_protects_ledger_greens_and_newest(old_artifacts, tmp_path, capsys):
    out, built = old_artifacts
    ledger = write_lines(tmp_path / "ledger.jsonl", [
        line("dep-1", built["b1"].version, "green", "2026-01-01T13:00:00+00:00", "2026-01-01T13:01:00+00:00"),
        "torn {",
    ])
    code, stdout, err = cli(capsys, "artifact", "prune", "--dir", str(out), "--keep-days", "30",
                            "--ledger", str(ledger))
    assert code == 0, err
    assert f"warning: {ledger}:2: unreadable ledger line skipped" in err
    assert "1 green version(s) from the ledger protected" in stdout
    left = {p.name.removesuffix(".tar.gz") for p in out.glob("*.tar.gz")}
    assert left == {built["b1"].version, built["b3"].version, built["f2"].version}
    code, stdout, _ = cli(capsys, "artifact", "prune", "--dir", str(out), "--no-ledger")
    assert code == 0 and "ledger not read (--no-ledger)" in stdout
    assert {p.name.removesuffix(".tar.gz") for p in out.glob("*.tar.gz")} == {built["b3"].version,
                                                                             built["f2"].version}


# ------------------------------------------------------------------ 4. ledger faults
class RecordingBackend:
    """Stands in for a SaaS: deploys fail or succeed on request and record what they were asked."""

    name = "recording"
    reports_version = False

    def __init__(self, fail_deploy: bool = False) -> None:
        self.fail_deploy = fail_deploy
        self.calls: list[tuple[str, str]] = []

    def deploy(self, release: Release) -> Outcome:
        self.calls.append(("deploy", release.version))
        if self.fail_deploy:
            raise InfraError("the platform refused the upload")
        return Outcome(None, f"ref-{release.version}", "deployed")

    def rollback(self, version: str, ref: str | None, release: Release | None) -> Outcome:
        self.calls.append(("rollback", version))
        return Outcome(None, ref, f"rolled back to {version}")


def _deployer(tmp_path: Path, backend, ledger: Path, said: list[str], warned: list[str]) -> Deployer:
    opts = DeployOptions(env="staging", skip_health=True, artifacts_dir=tmp_path / "artifacts",
                         incident_dir=tmp_path / "incidents", open_issue=False)
    return Deployer(backend, Ledger(ledger), opts, say=said.append, warn=warned.append)


def test_malformed_finished_at_is_skipped_not_used_for_the_rollback_target(tmp_path):
    out = tmp_path / "artifacts"
    v1, v2, v3, bad = (make_artifact(out, c, m) for c, m in (("1111111", 0), ("2222222", 5), ("3333333", 9),
                                                             ("4444444", 12)))
    ledger = write_lines(tmp_path / "ledger.jsonl", [
        line("dep-1", v1.version, "green", "2026-01-14T15:00:00+00:00", "2026-01-14T15:01:00+00:00"),
        line("dep-2", v2.version, "green", "2026-01-14T15:05:00+00:00", "2026-01-14T15:06:00+00:00"),
        line("dep-3", v3.version, "in_progress", "2026-01-14T15:09:00+00:00"),
        # valid JSON, but a finish time that is not a time: as a string it sorts after every real one
        line("dep-3", v3.version, "green", "2026-01-14T15:09:00+00:00", "2026-1-14 at noon"),
    ])
    backend, said, warned = RecordingBackend(fail_deploy=True), [], []
    report = _deployer(tmp_path, backend, ledger, said, warned).deploy(bad.tarball)
    assert backend.calls == [("deploy", bad.version), ("rollback", v2.version)]
    assert report.rollback.version == v2.version and report.rollback.status == "green"
    assert warned == [f"{ledger}:4: ledger line skipped (finished_at '2026-1-14 at noon' is not an ISO 8601 time)"]


def test_times_compare_as_datetimes_not_strings(tmp_path):
    ledger = write_lines(tmp_path / "ledger.jsonl", [
        # 17:30+02:00 is 15:30 UTC: earlier than 16:00 UTC although it sorts later as text
        line("dep-a", "backend-20260114-150000-aaaaaaa", "green", "2026-01-14T17:00:00+02:00",
             "2026-01-14T17:30:00+02:00"),
        line("dep-b", "backend-20260114-155000-bbbbbbb", "green", "2026-01-14T15:50:00Z", "2026-01-14T16:00:00Z"),
    ])
    read = Ledger(ledger).read()
    assert read.warnings == []
    assert read.last_green("staging", "backend").id == "dep-b"
    assert [d.id for d in read.history("staging", "backend")] == ["dep-a", "dep-b"]


def test_torn_last_line_does_not_swallow_the_next_append(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append(Deployment(id="dep-1", env="staging", service="backend", version="v1", status="green",
                             started_at="2026-01-14T15:00:00+00:00"))
    with open(ledger.path, "ab") as fh:
        fh.write(b'{"id":"dep-2","env":"staging","ser')   # a writer killed mid-line: no newline
    ledger.append(Deployment(id="dep-3", env="staging", service="backend", version="v3", status="green",
                             started_at="2026-01-14T16:00:00+00:00"))
    read = ledger.read()
    assert [e["id"] for e in read.events] == ["dep-1", "dep-3"]
    assert read.warnings == [f"{ledger.path}:2: unreadable ledger line skipped"]
    assert ledger.path.read_bytes().endswith(b"\n") and len(ledger.path.read_bytes().splitlines()) == 3


def test_unreadable_or_garbage_ledger_is_a_config_error(tmp_path):
    garbage = write_lines(tmp_path / "garbage.jsonl", ["not json", "[1]", '{"id": "x", "status": "green"}'])
    with pytest.raises(ConfigError, match=r"garbage\.jsonl has no usable line \(3 unusable; first: line 1"):
        Ledger(garbage).read()
    with pytest.raises(ConfigError, match="no usable line"):
        dora.read_ledger(garbage)
    directory = tmp_path / "dir.jsonl"
    directory.mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        Ledger(directory).read()
    with pytest.raises(ConfigError, match="cannot be read"):
        dora.read_ledger(directory)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert Ledger(empty).read().events == [] and dora.read_ledger(empty).empty
    assert Ledger(tmp_path / "absent.jsonl").read().events == []   # a first deploy starts the ledger


def test_deploy_and_rollback_stop_on_a_garbage_ledger(tmp_path, capsys):
    garbage = write_lines(tmp_path / "ledger.jsonl", ["{{{", "nope"])
    backend = RecordingBackend()
    good = make_artifact(tmp_path / "artifacts", "1111111", 0)
    with pytest.raises(ConfigError, match="no usable line"):
        _deployer(tmp_path, backend, garbage, [], []).deploy(good.tarball)
    assert backend.calls == [] and garbage.read_text() == "{{{\nnope\n", "nothing deployed, nothing appended"
    code, _, err = cli(capsys, "rollback", "--env", "staging", "--service", "backend", "--ledger", str(garbage),
                       "--root", str(tmp_path / "root"), "--no-issue")
    assert code == 2 and "no usable line" in err and "Traceback" not in err


def test_dora_read_ledger_exposes_its_warnings(tmp_path):
    ledger = write_lines(tmp_path / "ledger.jsonl", [
        line("dep-1", "v1", "green", "2026-01-14T15:00:00+00:00", "2026-01-14T15:01:00+00:00"),
        line("dep-2", "v2", "green", "2026-01-14T16:00:00+00:00", "soon"),
        "cut {",
    ])
    with pytest.warns(UserWarning) as caught:
        frame = dora.read_ledger(ledger)
    assert frame.attrs["warnings"] == [
        f"{ledger}:2: ledger line skipped (finished_at 'soon' is not an ISO 8601 time)",
        f"{ledger}:3: unreadable ledger line skipped",
    ]
    assert [str(w.message) for w in caught] == frame.attrs["warnings"]
    assert list(frame["id"]) == ["dep-1"]


# ------------------------------------------------------------------ 2. secrets in post-check output
def test_post_check_output_masks_secret_names_with_the_word_in_the_middle(tmp_path, monkeypatch, capsys):
    secrets = {"DB_PASSWORD_STAGING": "Pw-staging-7731x", "API_TOKEN_PROD": "tok-prod-55aa21",
               "STRIPE_SECRET_KEY_LIVE": "sk-live-0099zz"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    check = (f"{sys.executable} -c \"import os; "
             "[print(n, os.environ[n]) for n in ('DB_PASSWORD_STAGING', 'API_TOKEN_PROD', 'STRIPE_SECRET_KEY_LIVE')]\"")
    good = make_artifact(tmp_path / "artifacts", "1111111", 0)
    opts = DeployOptions(env="staging", skip_health=True, post_check=check, incident_dir=tmp_path / "inc",
                         open_issue=False)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    report = Deployer(RecordingBackend(), ledger, opts).deploy(good.tarball)
    out = capsys.readouterr()
    assert report.ok
    assert "post-check: DB_PASSWORD_STAGING ***" in out.out and "post-check: API_TOKEN_PROD ***" in out.out
    for value in secrets.values():
        assert value not in out.out + out.err
        assert value not in ledger.path.read_text()


# ------------------------------------------------------------------ 5. a failed first deploy
def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def local_root(tmp_path):
    root = tmp_path / "deploy" / "staging"
    yield root
    LocalBackend(root).stop()


def test_failed_first_deploy_leaves_no_bad_release_live(tmp_path, redis_server, cli_env, local_root):
    port = free_port()
    bad = make_artifact(tmp_path / "artifacts", "2222222", 5, service_env="DEMO_FAULT_UNHEALTHY=1\n")
    env = {**cli_env, "REDIS_URL": redis_server.url}
    env.pop("GH_TOKEN", None)
    proc = run_cli(["deploy", "--artifact", str(bad.tarball), "--env", "staging", "--backend", "local",
                    "--root", str(local_root), "--port", str(port), "--ledger", "ledger.jsonl",
                    "--incident-dir", "incidents", "--no-issue", *FAST_HEALTH], tmp_path, env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no release is live" in proc.stderr
    assert not (local_root / "current").exists() and not (local_root / "current").is_symlink()
    assert (local_root / "releases" / bad.version).is_dir(), "kept for inspection"
    with pytest.raises(urllib.error.URLError):
        _get(f"http://127.0.0.1:{port}/health")   # nothing answers: no half-working 503 service
    incident = next((tmp_path / "incidents").glob("*.md")).read_text()
    assert "**Live now in staging:** no release is live: the service is stopped" in incident
    failed = Ledger(tmp_path / "ledger.jsonl").read().states()[0]
    assert failed.status == "failed" and "health check failed" in failed.reason


def test_failed_deploy_with_a_rollback_says_what_is_live(tmp_path):
    out = tmp_path / "artifacts"
    v1, v2 = make_artifact(out, "1111111", 0), make_artifact(out, "2222222", 5)
    ledger = write_lines(tmp_path / "ledger.jsonl", [
        line("dep-1", v1.version, "green", "2026-01-14T15:00:00+00:00", "2026-01-14T15:01:00+00:00")])
    report = _deployer(tmp_path, RecordingBackend(fail_deploy=True), ledger, [], []).deploy(v2.tarball)
    assert report.live_state.startswith(f"release {v1.version} is live again")
    assert f"**Live now in staging:** release {v1.version} is live again" in report.incident_path.read_text()
    # a backend that cannot take a release down says so instead of pretending
    fresh = tmp_path / "fresh.jsonl"
    report = _deployer(tmp_path, RecordingBackend(fail_deploy=True), fresh, [], []).deploy(v2.tarball)
    assert report.rollback is None
    assert report.live_state.startswith(f"the failed release {v2.version} may still be live")
