"""The local backend: Capistrano's layout on this machine, with a real service process.

``<root>/releases/<version>/`` holds each extracted artifact; ``<root>/current`` is a symlink to the live
release, swapped atomically (``os.symlink`` to a temporary name, then ``os.replace``). The service
(default: this project's demo service, ``python -m hardening.demo.service``) runs from ``current`` with
``--version <version>``; its pid is in ``<root>/service.pid`` and a restart stops exactly that pid.

A release may carry ``service.env`` (``KEY=VALUE`` lines, e.g. ``DEMO_FAULT_UNHEALTHY=1``) added to the
service's environment: that is how a test ships a "bad version".

A failed deploy with no earlier green release to roll back to is withdrawn (``withdraw``): the service is
stopped and ``current`` removed, so nothing half-working answers on the port; the release directory stays
for inspection.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from hardening.deploy.artifacts import safe_extract
from hardening.deploy.backends import Outcome, Release
from hardening.errors import ConfigError, InfraError

SERVICE_ENV_FILE = "service.env"
DEFAULT_MODULE = "hardening.demo.service"


def read_service_env(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``#`` comments and blank lines ignored)."""
    env: dict[str, str] = {}
    if not path.is_file():
        return env
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        env[key] = value.strip().strip('"').strip("'")
    return env


def _pid_alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)   # reap it when it is our own child
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


class LocalBackend:
    name = "local"
    reports_version = True

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 8080, keep_releases: int = 5,
                 module: str = DEFAULT_MODULE, environ: Mapping[str, str] | None = None,
                 stop_timeout_s: float = 10.0) -> None:
        self.root = Path(root).resolve()
        self.host, self.port = host, port
        self.keep_releases = keep_releases
        self.module = module
        self.environ = dict(os.environ if environ is None else environ)
        self.stop_timeout_s = stop_timeout_s

    # ------------------------------------------------------------ layout
    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def pid_file(self) -> Path:
        return self.root / "service.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "shared" / "service.log"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def current_version(self) -> str | None:
        return os.readlink(self.current).rsplit("/", 1)[-1] if self.current.is_symlink() else None

    # ------------------------------------------------------------ operations
    def deploy(self, release: Release) -> Outcome:
        path = self.install(release)
        self.activate(release.version)
        self.cleanup(protect={release.version})
        return Outcome(self.base_url, f"releases/{path.name}", f"release {release.version} active")

    def rollback(self, version: str, ref: str | None, release: Release | None) -> Outcome:
        if not (self.releases / version).is_dir():
            if release is None:
                raise InfraError(f"release {version} is gone from {self.releases} and no artifact was given")
            self.install(release)
        self.activate(version)
        return Outcome(self.base_url, f"releases/{version}", f"rolled back to {version}")

    def withdraw(self, version: str) -> str:
        """Take the failed release ``version`` out of service (no earlier green release to roll back to):
        stop the service and remove ``current`` when it points at ``version`` (or is absent). A release that
        was live before and is not ``version`` is left alone. Returns what is live now, in words."""
        live = self.current_version()
        if live is not None and live != version:
            return f"release {live} is still live (the failed release {version} was never activated)"
        self.stop()
        self.current.unlink(missing_ok=True)
        kept = f"; the failed release stays in {self.releases / version} for inspection" \
            if (self.releases / version).is_dir() else ""
        return f"no release is live: the service is stopped and `current` removed{kept}"

    def install(self, release: Release) -> Path:
        """Extract into ``releases/<version>`` (via a temp dir + rename; an existing release is kept)."""
        target = self.releases / release.version
        if target.is_dir():
            return target
        self.releases.mkdir(parents=True, exist_ok=True)
        tmp = self.releases / f".tmp-{release.version}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            safe_extract(release.tarball, tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def activate(self, version: str) -> None:
        self.switch(version)
        self.restart(version)

    def switch(self, version: str) -> None:
        """Point ``current`` at ``releases/<version>`` atomically."""
        if not (self.releases / version).is_dir():
            raise InfraError(f"release {version} not installed in {self.releases}")
        tmp = self.root / f".current-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(f"releases/{version}", tmp)
        os.replace(tmp, self.current)

    def restart(self, version: str) -> int:
        self.stop()
        return self.start(version)

    def start(self, version: str) -> int:
        release_dir = self.releases / version
        env = {**self.environ, **read_service_env(release_dir / SERVICE_ENV_FILE),
               "DEMO_VERSION": version, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", self.module, "--host", self.host, "--port", str(self.port),
               "--version", version]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(cmd, cwd=self.current, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        tmp = self.pid_file.with_name(".service.pid.tmp")
        tmp.write_text(f"{proc.pid}\n")
        os.replace(tmp, self.pid_file)
        return proc.pid

    def service_pid(self) -> int | None:
        """The pid in the pid file, if that process is alive and is our service."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except FileNotFoundError:
            return None
        return pid if self.module in cmdline and _pid_alive(pid) else None

    def stop(self) -> None:
        """Stop the running service (SIGTERM, then SIGKILL after the timeout)."""
        pid = self.service_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout_s
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                while _pid_alive(pid):
                    time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    def cleanup(self, protect: set[str]) -> list[str]:
        """Keep the newest ``keep_releases`` releases plus the live one and ``protect``; remove the rest."""
        if not self.releases.is_dir():
            return []
        keep = {*protect, *([self.current_version()] if self.current_version() else [])}
        dirs = sorted((p for p in self.releases.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name.rsplit("-", 3)[-3:-1], reverse=True)
        removed = []
        for old in dirs[self.keep_releases:]:
            if old.name not in keep:
                shutil.rmtree(old)
                removed.append(old.name)
        return removed
