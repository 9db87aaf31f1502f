"""The CLI shell: help lists exit codes, and errors never reach the user as tracebacks."""

from __future__ import annotations

import subprocess

from hardening import cli
from hardening.commands import loadtest as loadtest_cmd
from tests.conftest import hardening_cmd


def test_help_documents_exit_codes(cli_env):
    out = subprocess.run([*hardening_cmd(), "--help"], env=cli_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert f"  {code}" in out.stdout
    for command in ("loadtest", "demo", "redis", "report", "artifact", "deploy", "rollback", "env"):
        assert command in out.stdout


def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2


def test_unexpected_error_is_reported_without_traceback(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("redis://:hunter22@127.0.0.1:1 broke")

    monkeypatch.setattr(loadtest_cmd, "cmd_loadtest", boom)
    monkeypatch.delenv("HARDENING_DEBUG", raising=False)
    assert cli.main(["loadtest", "--base-url", "http://127.0.0.1:1"]) == 3
    err = capsys.readouterr().err
    assert "unexpected RuntimeError" in err and "HARDENING_DEBUG=1" in err
    assert "Traceback" not in err and "hunter22" not in err
