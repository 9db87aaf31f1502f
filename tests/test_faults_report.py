"""`hardening report` with bad inputs and outputs: exit 2 with a clear message before any notebook runs, and
every skipped ledger line or run record warned about on the command's own output (not only in a page)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, hardening_cmd

SAMPLE_RUNS = ROOT / "data" / "sample" / "runs"
SAMPLE_LEDGER = ROOT / "data" / "sample" / "deployments" / "ledger.jsonl"


@pytest.fixture
def runs(tmp_path) -> Path:
    """A history of two real run records (from the shipped sample) and one whose run.json is corrupt."""
    root = tmp_path / "runs"
    root.mkdir()
    for src in sorted(SAMPLE_RUNS.iterdir())[-2:]:
        shutil.copytree(src, root / src.name)
    broken = root / "20261127T000000Z-0000000-dead"
    broken.mkdir()
    (broken / "run.json").write_text("{ this is not json")
    return root


def latest(runs: Path) -> Path:
    return sorted(p for p in runs.iterdir() if not p.name.endswith("dead"))[-1]


def report(cli_env, run: Path, out: Path, *extra: str, timeout: float = 600):
    return subprocess.run([*hardening_cmd(), "report", "--run", str(run), "--out", str(out), *extra],
                          env=cli_env, cwd=out.parent if out.parent.is_dir() else ROOT,
                          capture_output=True, text=True, timeout=timeout)


def assert_no_notebook_ran(r, out: Path) -> None:
    assert "report: [" not in r.stdout, r.stdout  # the build prints "report: [i/n] ..." per notebook
    assert not (out.is_dir() and any(out.glob("*.ipynb"))), "a notebook ran"
    assert "unexpected" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_out_below_a_regular_file_exits_2_before_any_notebook(cli_env, tmp_path, runs):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    out = blocker / "reports"
    r = report(cli_env, latest(runs), out, "--no-history")
    assert r.returncode == 2, r.stderr
    assert "--out" in r.stderr and f"{blocker} is a file, not a folder" in r.stderr, r.stderr
    assert_no_notebook_ran(r, out)
    assert blocker.read_text() == "keep me"


def test_out_that_is_a_regular_file_exits_2_and_leaves_it_alone(cli_env, tmp_path, runs):
    out = tmp_path / "reports.html"
    out.write_text("keep me")
    r = report(cli_env, latest(runs), out, "--no-history")
    assert r.returncode == 2, r.stderr
    assert f"--out {out} is a file, not a folder" in r.stderr, r.stderr
    assert_no_notebook_ran(r, out)
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("where", ["existing", "to-create"])
def test_out_that_cannot_be_written_exits_2_before_any_notebook(cli_env, tmp_path, runs, where):
    """Tests run as root, whom file modes do not stop: sysfs refuses new entries even to root."""
    out = Path("/sys") if where == "existing" else Path("/sys") / f"hardening-reports-{uuid.uuid4().hex[:8]}"
    probe = Path("/sys") / f".hardening-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
    except OSError:
        pass
    else:
        probe.rmdir()
        pytest.skip("/sys is writable here: no folder that refuses writes to root")
    r = report(cli_env, latest(runs), out, "--no-history")
    assert r.returncode == 2, r.stderr
    said = "is not writable" if where == "existing" else "cannot be created"
    assert f"--out {out} {said}" in r.stderr and "Choose" in r.stderr, r.stderr
    assert "report: [" not in r.stdout and "unexpected" not in r.stderr


def test_ledger_of_pure_garbage_exits_2_before_any_notebook(cli_env, tmp_path, runs):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("garbage\n{not json either\n[1, 2, 3]\n")
    out = tmp_path / "reports"
    r = report(cli_env, latest(runs), out, "--no-history", "--ledger", str(ledger))
    assert r.returncode == 2, r.stderr
    assert str(ledger.name) in r.stderr and "error:" in r.stderr, r.stderr
    assert_no_notebook_ran(r, out)


def test_ledger_and_history_warnings_reach_the_command_output(cli_env, tmp_path, runs):
    """Garbage lines in a ledger and an unreadable run record in the history: the reports are built (exit 0)
    and each skipped line and record is named on stderr as `warning: ...`."""
    ledger = tmp_path / "ledger.jsonl"
    lines = SAMPLE_LEDGER.read_text().splitlines()[:40]
    lines[3] = "garbage line"
    lines.insert(10, '{"id": "dep-x", "status": "no-such-status"}')
    ledger.write_text("\n".join(lines) + "\n")
    out = tmp_path / "reports"
    r = report(cli_env, latest(runs), out, "--history", str(runs), "--ledger", str(ledger))
    assert r.returncode == 0, r.stderr + r.stdout
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert any(w.startswith("warning: ") and f"{ledger.name}:4:" in w for w in warned), warned
    assert any(f"{ledger.name}:11:" in w for w in warned), warned
    assert len([w for w in warned if ledger.name in w]) == 2, warned  # each skipped line once
    assert any(w.startswith("warning: skipped run record 20261127T000000Z-0000000-dead") for w in warned), warned
    assert (out / "index.html").is_file()


def test_preflight_reads_every_line_of_a_ledger_and_the_history_once(tmp_path, runs, capsys):
    """The library call behind the command: the warnings are returned and printed, nothing else is printed."""
    import sys

    from hardening.reports.preflight import preflight

    ledger = tmp_path / "ledger.jsonl"
    lines = SAMPLE_LEDGER.read_text().splitlines()[:20]
    lines[5] = "not json"
    ledger.write_text("\n".join(lines) + "\n")
    found = preflight(latest(runs), runs, tmp_path / "out", ledger, stream=sys.stderr)
    err = capsys.readouterr().err
    assert len(found) == 2 and err.count("warning: ") == 2, (found, err)
    assert any(f"{ledger.name}:6:" in w for w in found), found
    assert any(w.startswith("skipped run record 20261127T000000Z-0000000-dead") for w in found), found
    assert (tmp_path / "out").is_dir() and os.listdir(tmp_path / "out") == []  # the write check leaves nothing
