"""Deploy backends: ``local`` (real: Capistrano-style releases + a restarted process), ``vercel`` and
``railway`` (command backends driving those CLIs through subprocess).

A backend deploys a verified artifact and rolls back to an earlier one; the orchestrator
(``hardening.deploy.deployer``) does verification, health checks and the ledger.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hardening.errors import InfraError
from hardening.masking import mask


@dataclass(frozen=True)
class Release:
    """A verified artifact ready to deploy."""

    version: str
    tarball: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    url: str | None        # base URL to health-check (None: the backend does not know it)
    ref: str | None        # the backend's own handle for this deployment (URL, id, release path)
    detail: str = ""


class Backend(Protocol):
    """What the deployer needs of a backend. A backend may also offer ``withdraw(version) -> str``: take a
    failed release down when there is no earlier green one to roll back to, returning what is live now in
    words (the ``local`` backend stops the service and removes ``current``). Without it the deployer
    reports that the failed release may still be live."""

    name: str
    reports_version: bool   # does the deployed service answer its version in /health?

    def deploy(self, release: Release) -> Outcome: ...

    def rollback(self, version: str, ref: str | None, release: Release | None) -> Outcome: ...


def run_cli(cmd: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout_s: float = 900) -> str:
    """Run a SaaS CLI (tokens travel in the environment, never in argv); return stdout or raise InfraError."""
    exe = shutil.which(cmd[0], path=(env or os.environ).get("PATH"))
    if exe is None:
        raise InfraError(f"{cmd[0]!r} not found on PATH; install the {cmd[0]} CLI (see README)")
    try:
        proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, env=dict(env or os.environ),
                              cwd=cwd, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise InfraError(f"{cmd[0]} {cmd[1]} timed out after {timeout_s:g}s") from None
    if proc.returncode != 0:
        tail = mask((proc.stderr or proc.stdout).strip())[-600:]
        raise InfraError(f"`{mask(' '.join(cmd[:2]))}` exited {proc.returncode}: {tail}")
    return proc.stdout
