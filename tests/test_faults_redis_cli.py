"""`hardening redis ...` against a real server that refuses the URL's credentials: exit 2 (README), not 3."""

from __future__ import annotations

import subprocess

import pytest

from hardening.demo.embedded_redis import EmbeddedRedis
from tests.conftest import hardening_cmd

PASSWORD = "right-pw-7731"
WRONG = "wrong-pw-4410"


@pytest.fixture(scope="module")
def protected():
    with EmbeddedRedis(extra_args=["--requirepass", PASSWORD]) as server:
        yield server


def redis_cli(args: list[str], url: str, env: dict, cwd):
    env = {**env, "REDIS_URL": url}
    return subprocess.run([*hardening_cmd(), "redis", *args, "--timeout", "2"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


COMMANDS = [["enable-monitoring", "5"], ["capture-before"], ["capture-after"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("credentials", [f":{WRONG}@", "", f"nobody:{WRONG}@"],
                         ids=["wrong-password", "no-password", "unknown-user"])
def test_refused_credentials_exit_2_naming_the_url(protected, cli_env, tmp_path, command, credentials):
    url = f"redis://{credentials}127.0.0.1:{protected.port}/0"
    r = redis_cli(command, url, cli_env, tmp_path)
    assert r.returncode == 2, r.stderr
    assert "refused the credentials" in r.stderr and f"127.0.0.1:{protected.port}" in r.stderr, r.stderr
    assert "REDIS_URL" in r.stderr and "--url" in r.stderr  # where to fix it
    assert WRONG not in r.stdout + r.stderr
    assert not (tmp_path / "loadtest").exists(), "nothing is written when the server refused us"


def test_password_for_a_server_without_one_exits_2(redis_server, cli_env, tmp_path):
    r = redis_cli(["capture-before"], f"redis://:{WRONG}@127.0.0.1:{redis_server.port}/0", cli_env, tmp_path)
    assert r.returncode == 2, r.stderr
    assert "refused the credentials" in r.stderr and WRONG not in r.stderr


def test_right_password_still_works_and_a_dead_server_is_still_3(protected, cli_env, tmp_path):
    ok = redis_cli(["capture-before"], f"redis://:{PASSWORD}@127.0.0.1:{protected.port}/0", cli_env, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "loadtest" / "redis-metrics-before.json").is_file()
    from hardening.net import free_port

    dead = redis_cli(["enable-monitoring", "5"], f"redis://:{WRONG}@127.0.0.1:{free_port()}/0", cli_env, tmp_path)
    assert dead.returncode == 3 and "cannot reach Redis" in dead.stderr, dead.stderr
