"""Stop signals: forwarded to k6 while it runs; elsewhere they unwind so embedded servers are stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hardening.loadtest.k6 import K6Result
from hardening.processes import STOP_SIGNALS
from tests.conftest import ROOT, hardening_cmd


def _deliver(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.2)  # the handler runs between bytecodes of this thread


def test_first_signal_unwinds_later_ones_are_ignored_and_handlers_restored():
    before = signal.getsignal(signal.SIGTERM)
    with STOP_SIGNALS:
        with pytest.raises(KeyboardInterrupt):
            _deliver(signal.SIGTERM)
        _deliver(signal.SIGHUP)  # cleanup under way: ignored, no exception
    assert signal.getsignal(signal.SIGTERM) is before


def test_signal_during_k6_is_forwarded_as_sigint():
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        with STOP_SIGNALS.forwarding_to(child) as forwarded:
            _deliver(signal.SIGTERM)
            child.wait(timeout=10)
        assert forwarded.is_set()
        assert child.returncode == -signal.SIGINT
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_killed_k6_is_named_by_signal():
    assert K6Result(-9, False, 1.0, Path("x")).meaning == "killed by SIGKILL"
    assert K6Result(99, False, 1.0, Path("x")).meaning == "thresholds crossed"


def _marked(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (children inherit the CLI's environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (proc / "environ").read_bytes():
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_sigterm_while_demo_starts_stops_redis_and_service(cli_env, tmp_path, delay):
    marker = f"HARDENING_REVIEW_MARK={uuid.uuid4().hex}"
    cli_env[marker.split("=")[0]] = marker.split("=")[1]
    proc = subprocess.Popen([*hardening_cmd(), "demo", "--no-report", "--profile", "quick", "--no-progress",
                             "--out", str(tmp_path / "runs")],
                            env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "Redis at" in line, line
        time.sleep(delay)  # 0: while the demo service is being spawned; 0.3: while it starts up
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        deadline = time.monotonic() + 5
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _marked(marker), "embedded Redis / demo service / k6 left running"
        runs = tmp_path / "runs"
        for record in (r for r in (runs.iterdir() if runs.exists() else []) if not r.name.startswith(".")):
            assert json.loads((record / "run.json").read_text())["status"] == "interrupted"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _marked(marker):
            os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
