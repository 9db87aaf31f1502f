"""The CLI shell: help lists exit codes, and errors never reach the user as tracebacks."""

from __future__ import annotations

import os

from hardening.commands import loadtest as loadtest_cmd


def test_help_documents_exit_codes(cli):
    out = cli("--help")
    assert out.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert f"  {code}" in out.stdout
    for command in ("loadtest", "demo", "redis", "report", "artifact", "deploy", "rollback", "env"):
        assert command in out.stdout


def test_no_command_is_a_usage_error(cli):
    assert cli().code == 2


def test_unexpected_error_is_reported_without_traceback(monkeypatch, cli):
    def boom(args):
        raise RuntimeError("redis://:hunter22@127.0.0.1:1 broke")

    monkeypatch.setattr(loadtest_cmd, "cmd_loadtest", boom)
    monkeypatch.delenv("HARDENING_DEBUG", raising=False)
    result = cli("loadtest", "--base-url", "http://127.0.0.1:1", env=dict(os.environ))
    assert result.code == 3
    err = result.err
    assert "unexpected RuntimeError" in err and "HARDENING_DEBUG=1" in err
    assert "Traceback" not in err and "hunter22" not in err
