"""Shared fixtures: real servers on loopback, started once and stopped by pid; the CLI in-process.

Servers
  ``redis_server``     function  a fresh embedded Redis/Valkey of its own (for tests that stop, kill or
                                 reconfigure it beyond a reset)
  ``shared_redis``     function  the session's default embedded server, reset to a clean state
  ``shared_server``    function  ``shared_server("redis-7.0" | "valkey-9" | "redis-6.2" | "default",
                                 password=None)``: the session's server of that version (with that
                                 ``--requirepass``), reset; skips when Redis 7.0 is absent
  ``redis_pool``       session   the ``RedisPool`` behind the two above
  ``demo_service``     function  the session's demo service (version ``v-test``) on its own Redis; faults
                                 cleared and that Redis flushed before each test; ``.redis_url`` is its Redis

A reset (before each test that checks a shared server out) undoes what a test may have changed: every
parameter ``CONFIG SET`` changed goes back to its start value, keys, scripts, slowlog and latency events
are dropped, other clients are disconnected, and ``CONFIG RESETSTAT`` zeroes the counters. A server the
test stopped, killed or locked (``requirepass``) is started again. Tests stay independent of order.

CLI
  ``cli``              function  ``cli("loadtest", "--base-url", url, env=..., cwd=...)`` runs
                                 ``hardening.cli.main(argv)`` in this process and returns a ``CliResult``
                                 (``.code .out .err``, also ``.returncode .stdout .stderr``). Output is
                                 captured at the file-descriptor level, so children's output counts too.
  ``cli_env``          function  the environment for a ``hardening`` subprocess (venv bin first, no REDIS_URL)

``wait_for(condition, timeout, what)`` waits for a condition with a deadline instead of a fixed sleep.

Parallel runs
  ``make test`` runs two pytest-xdist workers (``-n 2``) with ``--dist loadfile`` (pyproject): a file's tests
  run on one worker, in order. A notebook's cells share one kernel (nbval), and module fixtures (k6 runs, a
  built wheel, a report build) are made once. Session fixtures are made once per worker, each with its own
  servers on its own free ports: an expensive fixture that two files would share belongs in one module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from hardening.demo.embedded_redis import EmbeddedRedis
from hardening.demo.service import DemoService, http_json

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
T = TypeVar("T")


def hardening_cmd() -> list[str]:
    exe = shutil.which("hardening", path=str(VENV_BIN))
    return [exe] if exe else [sys.executable, "-m", "hardening"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("REDIS_URL", None)
    return env


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition",
             interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy (returned), failing after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------ Redis
@pytest.fixture
def redis_server():
    """A fresh embedded Redis/Valkey of its own (see hardening.demo.embedded_redis for which binary)."""
    with EmbeddedRedis() as server:
        yield server


def _quiet_client(port: int, password: str | None = None) -> redis.Redis:
    # protocol 2 and no driver info: no HELLO / CLIENT SETINFO, so Redis 6.2 counts no error replies
    return redis.Redis(port=port, password=password, protocol=2, driver_info=None, socket_timeout=5,
                       decode_responses=True)


class RedisPool:
    """One server per (version, password), started on first use and reset on every checkout."""

    def __init__(self) -> None:
        self.servers: dict[tuple[str, str | None], EmbeddedRedis] = {}
        self.initial_config: dict[tuple[str, str | None], dict[str, str]] = {}

    def _start(self, key: tuple[str, str | None]) -> EmbeddedRedis:
        from redis_support import binary_or_skip  # tests/ is on sys.path (rootdir conftest)

        name, password = key
        binary = None if name == "default" else binary_or_skip(name)
        server = EmbeddedRedis(binary=binary, extra_args=["--requirepass", password] if password else []).start()
        client = _quiet_client(server.port, password)
        try:
            self.initial_config[key] = client.config_get("*")
        except BaseException:
            server.stop()
            raise
        finally:
            client.close()
        self.servers[key] = server
        return server

    def checkout(self, name: str = "default", password: str | None = None) -> EmbeddedRedis:
        key = (name, password)
        server = self.servers.get(key)
        if server is None:
            return self._start(key)
        try:
            self._reset(server, password, self.initial_config[key])
        except (redis.RedisError, OSError):  # stopped, killed, or locked with another password: start again
            server.stop()
            del self.servers[key]
            return self._start(key)
        return server

    @staticmethod
    def _reset(server: EmbeddedRedis, password: str | None, initial: Mapping[str, str]) -> None:
        if server.proc is None or server.proc.poll() is not None:
            raise redis.ConnectionError("server not running")
        client = _quiet_client(server.port, password)
        try:
            current = client.config_get("*")
            for key, value in initial.items():
                if current.get(key) != value:
                    client.config_set(key, value)
            client.flushall()
            client.script_flush()
            client.slowlog_reset()
            client.execute_command("LATENCY", "RESET")
            client.execute_command("CLIENT", "KILL", "TYPE", "normal")   # every client but this one
            client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            client.config_resetstat()                                    # last: counters start at zero
        finally:
            client.close()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


@pytest.fixture(scope="session")
def redis_pool() -> Iterator[RedisPool]:
    pool = RedisPool()
    yield pool
    pool.close()


@pytest.fixture
def shared_redis(redis_pool: RedisPool) -> EmbeddedRedis:
    """The session's default embedded server, clean (see the module doc for what a reset does)."""
    return redis_pool.checkout("default")


@pytest.fixture
def shared_server(redis_pool: RedisPool) -> Callable[..., EmbeddedRedis]:
    """``shared_server(name, password=None)``: the session's server of that version (names as in
    redis_support.SERVERS, or "default"), started with ``--requirepass`` when a password is given; clean."""
    return redis_pool.checkout


# ------------------------------------------------------------------------------------------- demo
class _DemoHolder:
    def __init__(self) -> None:
        self.redis: EmbeddedRedis | None = None
        self.service: DemoService | None = None

    def checkout(self) -> DemoService:
        if self.redis is None or self.redis.proc is None or self.redis.proc.poll() is not None:
            self.close()
            self.redis = EmbeddedRedis().start()
        svc = self.service
        if svc is None or svc.proc is None or svc.proc.poll() is not None:
            if svc is not None:
                svc.stop()
                svc.cleanup()
            self.service = svc = DemoService(self.redis.url, version="v-test").start()
        client = _quiet_client(self.redis.port)
        try:
            client.flushall()
        finally:
            client.close()
        svc.set_faults(latency_ms=0, error_rate=0.0, unhealthy=False)
        assert http_json("GET", svc.url("/health"))[0] == 200, svc.log_tail()
        return svc

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service.cleanup()
            self.service = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


@pytest.fixture(scope="session")
def _demo_holder() -> Iterator[_DemoHolder]:
    holder = _DemoHolder()
    yield holder
    holder.close()


@pytest.fixture
def demo_service(_demo_holder: _DemoHolder) -> DemoService:
    """The session's demo service (version ``v-test``), no faults, its Redis (``.redis_url``) empty."""
    return _demo_holder.checkout()


# -------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def cli_env():
    """Environment for running the ``hardening`` CLI as a subprocess."""
    return subprocess_env()


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    # the names of subprocess.CompletedProcess, so a test reads the same either way
    @property
    def returncode(self) -> int:
        return self.code

    @property
    def stdout(self) -> str:
        return self.out

    @property
    def stderr(self) -> str:
        return self.err


@contextlib.contextmanager
def _process_state(env: Mapping[str, str], cwd: str | os.PathLike | None) -> Iterator[None]:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


class CliRunner:
    """``hardening.cli.main(argv)`` in this process, with its own environment and working directory.

    ``main`` enters ``hardening.processes.STOP_SIGNALS`` only around a command and restores the previous
    handlers when it leaves, so pytest's own signal handling (and pytest-timeout's) is back afterwards.
    """

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd

    def __call__(self, *argv: Any, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike | None = None) -> CliResult:
        from hardening.cli import main

        if len(argv) == 1 and isinstance(argv[0], Sequence) and not isinstance(argv[0], str):
            argv = tuple(argv[0])
        args = [str(a) for a in argv]
        self.capfd.readouterr()  # what the test printed before is not the command's output
        with _process_state(subprocess_env() if env is None else env, cwd):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse: --help, --version, usage errors
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            # anything else main() lets escape fails the test with its traceback and output
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = self.capfd.readouterr()
        return CliResult(code, out, err)


@pytest.fixture
def cli(capfd) -> CliRunner:
    """Run ``hardening`` in-process: ``cli(*argv, env=None, cwd=None) -> CliResult(code, out, err)``."""
    return CliRunner(capfd)
