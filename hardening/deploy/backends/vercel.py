"""Vercel command backend (frontend): ``vercel deploy`` / ``vercel rollback`` / ``vercel promote``.

The token travels as ``VERCEL_TOKEN`` in the environment (the CLI reads it), never on the command line.
- deploy: ``vercel deploy <release dir> --yes [--prod]`` prints the deployment URL (health-checked next);
- rollback in production: ``vercel rollback <url of the last green deployment>`` (instant, no rebuild);
  with ``promote=True``: ``vercel promote <url>``; in other environments the last green artifact is
  deployed again.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hardening.deploy.artifacts import safe_extract
from hardening.deploy.backends import Outcome, Release, run_cli
from hardening.errors import InfraError

_URL = re.compile(r"https?://[^\s]+")


class VercelBackend:
    name = "vercel"
    reports_version = False

    def __init__(self, env: str, *, cli: str = "vercel", scope: str | None = None, promote: bool = False,
                 environ: Mapping[str, str] | None = None, timeout_s: float = 900) -> None:
        self.env, self.cli, self.scope, self.promote = env, cli, scope, promote
        self.environ = dict(os.environ if environ is None else environ)
        self.timeout_s = timeout_s

    @property
    def production(self) -> bool:
        return self.env == "production"

    def _run(self, *args: str, cwd: Path | None = None) -> str:
        scope = ["--scope", self.scope] if self.scope else []
        return run_cli([self.cli, *args, *scope], env=self.environ, cwd=cwd, timeout_s=self.timeout_s)

    def deploy(self, release: Release) -> Outcome:
        with tempfile.TemporaryDirectory(prefix=f"vercel-{release.version}-") as tmp:
            safe_extract(release.tarball, Path(tmp))
            out = self._run("deploy", tmp, "--yes", *(["--prod"] if self.production else []))
        urls = _URL.findall(out)
        if not urls:
            raise InfraError("vercel deploy printed no deployment URL")
        url = urls[-1].rstrip("/")
        return Outcome(url, url, f"vercel deployment {url}")

    def rollback(self, version: str, ref: str | None, release: Release | None) -> Outcome:
        if self.production and ref:
            self._run("promote" if self.promote else "rollback", ref)
            return Outcome(ref, ref, f"vercel {'promote' if self.promote else 'rollback'} {ref}")
        if release is None:
            raise InfraError(f"no Vercel URL recorded for {version} and no artifact to redeploy")
        return self.deploy(release)
