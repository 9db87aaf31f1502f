"""Review fixes: bad input to ledger, manifest and deploy options gives a clear error, never a traceback;
change points report robust levels; DORA figures on a small hand-checked ledger."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from hardening.analysis import stats
from hardening.deploy import artifacts, dora
from hardening.deploy.deployer import Deployer, DeployOptions
from hardening.deploy.ledger import Deployment, Ledger, parse_events
from hardening.errors import CheckFailed, ConfigError
from tests.conftest import hardening_cmd

GOOD_LINE = {"id": "dep-1", "env": "staging", "service": "backend", "version": "backend-20260114-150000-aaaaaaa",
             "started_at": "2026-01-14T15:00:00+00:00", "finished_at": "2026-01-14T15:01:00+00:00",
             "status": "green"}


def write_ledger(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_corrupt_ledger_lines_are_skipped_with_their_line_numbers(tmp_path):
    path = write_ledger(tmp_path / "ledger.jsonl", [
        json.dumps(GOOD_LINE),
        '{"id": "only-an-id"}',                                     # missing env/service/version
        "not json {",
        json.dumps({**GOOD_LINE, "id": "dep-2", "started_at": 5}),  # wrong type would break sorting
        json.dumps({**GOOD_LINE, "id": "dep-3", "status": "weird"}),
        "[1, 2]",
    ])
    events, problems = parse_events(path.read_bytes())
    assert [e["id"] for e in events] == ["dep-1"]
    assert [p.split(":")[0] for p in problems] == ["2", "3", "4", "5", "6"]
    ledger = Ledger(path)
    assert [d.id for d in ledger.states()] == ["dep-1"]
    assert ledger.live("staging", "backend").id == "dep-1"
    read = ledger.read()
    assert f"{path}:2: ledger line skipped (missing env, service, version)" in read.warnings
    assert ledger.warnings == read.warnings and len(read.warnings) == 5
    with pytest.warns(UserWarning) as caught:
        frame = dora.read_ledger(path)
    assert [str(w.message) for w in caught] == read.warnings
    assert list(frame["id"]) == ["dep-1"] and frame.attrs["skipped"] == 5
    assert frame.attrs["warnings"] == read.warnings


def test_cli_with_a_corrupt_ledger_exits_cleanly(tmp_path, cli_env):
    ledger = write_ledger(tmp_path / "ledger.jsonl", [json.dumps(GOOD_LINE), '{"id": "x"}'])
    (tmp_path / "artifacts").mkdir()
    proc = subprocess.run([*hardening_cmd(), "artifact", "prune", "--dir", str(tmp_path / "artifacts"),
                           "--ledger", str(ledger), "--dry-run"], env=cli_env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "ledger line skipped" in proc.stderr
    assert "1 green version(s) from the ledger protected" in proc.stdout
    # no earlier green version: a usage error (2) that says which versions are green, not a traceback
    proc = subprocess.run([*hardening_cmd(), "rollback", "--env", "staging", "--service", "backend", "--ledger",
                           str(ledger), "--root", str(tmp_path / "root"), "--no-issue"], env=cli_env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "green versions: backend-20260114-150000-aaaaaaa" in proc.stderr


def _built(tmp_path: Path) -> artifacts.BuildResult:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.txt").write_text("hello\n")
    return artifacts.build_artifact("backend", [Path("app.txt")], tmp_path / "out", commit="a" * 40, base=src,
                                    when=datetime(2026, 1, 14, 15, 0, tzinfo=UTC))


@pytest.mark.parametrize("files", [[{"name": "x"}], "abc", [{"path": "app.txt", "size": "6", "sha256": "0"}]])
def test_malformed_manifest_fails_verify_with_a_reason(tmp_path, files):
    built = _built(tmp_path)
    manifest = json.loads(built.manifest.read_text())
    manifest["files"] = files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(manifest))
    with pytest.raises(CheckFailed, match="malformed"):
        artifacts.verify_artifact(built.tarball, bad)
    bad.write_text("[1, 2]")
    with pytest.raises(CheckFailed, match="malformed"):
        artifacts.verify_artifact(built.tarball, bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        artifacts.verify_artifact(built.tarball, tmp_path / "missing.json")


def test_cli_verify_malformed_manifest_exit_1(tmp_path, cli_env):
    built = _built(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"files": 3}')
    proc = subprocess.run([*hardening_cmd(), "artifact", "verify", str(built.tarball), "--manifest", str(bad)],
                          env=cli_env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "malformed" in proc.stderr and "Traceback" not in proc.stderr


class _NeverCalled:
    name = "never"
    reports_version = False

    def deploy(self, release):  # pragma: no cover - the test fails if it is reached
        raise AssertionError("deploy must not run")

    rollback = deploy


@pytest.mark.parametrize("post_check", ['hardening loadtest "unclosed', ""])
def test_bad_post_check_is_refused_before_the_ledger_is_touched(tmp_path, post_check):
    built = _built(tmp_path)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    deployer = Deployer(_NeverCalled(), ledger, DeployOptions(env="staging", post_check=post_check),
                        say=lambda _line: None)
    with pytest.raises(ConfigError, match="post-check"):
        deployer.deploy(built.tarball)
    assert not ledger.path.exists()


def test_change_point_levels_are_medians_so_one_outlier_run_does_not_inflate_them():
    r = np.random.default_rng(3)
    y = np.r_[r.normal(4, 0.3, 14), r.normal(45, 2, 10)]
    y[21] = 900.0  # one failing run far above the new level
    cps = stats.change_points(y)
    assert [c.index for c in cps] == [14]
    assert cps[0].before_median == pytest.approx(np.median(y[:14]))
    assert cps[0].after_median == pytest.approx(np.median(y[14:]))
    assert cps[0].relative_change == pytest.approx(np.median(y[14:]) / np.median(y[:14]) - 1)
    assert cps[0].after_median < 50  # the mean would be ~130


def test_dora_figures_on_a_hand_checked_ledger(tmp_path):
    t = "2026-01-0{}T{}:00+00:00".format
    rows = [
        dict(id="A", version="vA", commit_time=t(1, "10:00"), started_at=t(1, "11:00"), finished_at=t(1, "11:01"),
             status="green"),
        dict(id="B", version="vB", commit_time=t(1, "11:30"), started_at=t(1, "12:00"), finished_at=t(1, "12:02"),
             status="failed"),
        dict(id="R", version="vA", started_at=t(1, "12:02"), finished_at=t(1, "12:03"), status="green",
             rollback_of="B"),
        dict(id="B", version="vB", commit_time=t(1, "11:30"), started_at=t(1, "12:00"), finished_at=t(1, "12:02"),
             status="rolled_back"),
        dict(id="C", version="vC", commit_time=t(2, "11:00"), started_at=t(3, "11:00"), finished_at=t(3, "11:01"),
             status="green"),
    ]
    path = write_ledger(tmp_path / "l.jsonl", [json.dumps({"env": "production", "service": "backend", **r})
                                               for r in rows])
    frame = dora.read_ledger(path)
    m = dora.dora_metrics(frame, "production")
    assert (m.deployments, m.changes, m.rollbacks, m.failed_changes) == (4, 3, 1, 1)
    assert m.change_failure_rate == pytest.approx(1 / 3)
    assert m.days == pytest.approx(2.0)  # first start 01 11:00 -> last start 03 11:00
    assert m.deploys_per_day == pytest.approx(2.0)
    assert m.time_to_detect_s_median == 120 and m.time_to_rollback_s_median == 60
    assert m.time_to_restore_s_median == 180
    assert m.lead_time_s_median == pytest.approx((3660 + 86400 + 60) / 2)
    # a ledger without production deployments: all environments, with a note saying so
    assert dora.environment_or_all(frame, "production") == ("production", None)
    env, note = dora.environment_or_all(frame, "staging")
    assert env is None and "'staging'" in note and "production" in note


def test_ledger_append_keeps_valid_lines_parseable(tmp_path):
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append(Deployment(id="dep-x", env="staging", service="backend", version="v", reason="<b>x</b>"))
    events, problems = parse_events(ledger.path.read_bytes())
    assert problems == [] and events[0]["reason"] == "<b>x</b>"
