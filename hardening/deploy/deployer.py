"""Deploy and roll back with evidence: verify, record, deploy, health-check, post-check, roll back.

``deploy``:
1. verify the artifact (signature when a key is pinned, hashes, no unlisted/unsafe files, names);
2. record the rollback target (the last green deployment of this service in this environment) and an
   ``in_progress`` ledger line;
3. deploy through the backend, health-check (``hardening.deploy.health``), run the optional post-deploy check
   command (e.g. ``hardening loadtest …``);
4. on success: ``green``. On any failure: ``failed``, then an automatic rollback to the last green
   deployment (a new ledger deployment with ``rollback_of``), the failed one marked ``rolled_back``,
   the incident text written (seed format) and, with ``GH_TOKEN``, a GitHub issue opened.
   With no earlier green deployment there is nothing to roll back to: a backend that can take a release
   down (``withdraw``; the ``local`` backend stops the service and removes ``current``) does so, so a
   failed first release never keeps serving. The incident says what is live afterwards.

The ledger is read once per operation; a skipped (invalid) line is reported through ``warn``
(``warning: …`` on stderr by default) and never used; an unreadable ledger stops the deploy (ConfigError).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hardening.deploy import incident as incidents
from hardening.deploy.artifacts import verify_artifact
from hardening.deploy.backends import Backend, Outcome, Release
from hardening.deploy.health import HealthPolicy, HealthResult, wait_healthy
from hardening.deploy.ledger import Deployment, Ledger, LedgerRead, new_id, utcnow
from hardening.errors import CheckFailed, ConfigError, HardeningError
from hardening.masking import mask

Say = Callable[[str], None]


def _print(line: str) -> None:
    print(mask(line), flush=True)


def _warn(line: str) -> None:
    print(f"warning: {mask(line)}", file=sys.stderr, flush=True)


@dataclass
class DeployOptions:
    env: str
    policy: HealthPolicy = field(default_factory=HealthPolicy)
    health_path: str = "/health"
    health_url: str | None = None          # overrides <deployment url> + health_path
    check_version: bool | None = None      # None: when the backend reports its version
    skip_health: bool = False
    post_check: str | None = None          # command run after a healthy deploy; non-zero = failure
    post_check_timeout_s: float = 1800
    public_key: Path | None = None
    artifacts_dir: Path = Path("artifacts")
    incident_dir: Path = Path("data/deployments/incidents")
    open_issue: bool = True
    repo: str | None = None
    actor: str | None = None
    branch: str | None = None
    run_url: str | None = None


@dataclass
class DeployReport:
    deployment: Deployment
    rollback: Deployment | None = None
    health: HealthResult | None = None
    incident_path: Path | None = None
    issue: str | None = None
    url: str | None = None
    live_state: str | None = None     # what the environment serves after a failure, in words

    @property
    def ok(self) -> bool:
        return self.deployment.status == "green"


def find_release(artifacts_dir: Path, version: str, public_key: Path | None) -> Release | None:
    """The verified artifact of ``version`` in ``artifacts_dir``, or None when it is not there."""
    tarball = artifacts_dir / f"{version}.tar.gz"
    if not tarball.is_file():
        return None
    manifest = verify_artifact(tarball, public_key=public_key, expect_version=version)
    return Release(version, tarball, manifest)


class Deployer:
    def __init__(self, backend: Backend, ledger: Ledger, options: DeployOptions, say: Say = _print,
                 warn: Say = _warn) -> None:
        self.backend, self.ledger, self.opts, self.say, self.warn = backend, ledger, options, say, warn

    def _read_ledger(self) -> LedgerRead:
        read = self.ledger.read()
        for warning in read.warnings:
            self.warn(warning)
        return read

    # ------------------------------------------------------------ public operations
    def deploy(self, tarball: Path, manifest_path: Path | None = None) -> DeployReport:
        self._post_check_argv()  # a malformed --post-check is a usage error before anything is recorded
        manifest = verify_artifact(tarball, manifest_path, public_key=self.opts.public_key)
        version, service = manifest["version"], manifest["name"]
        self.say(f"artifact {version} verified ({len(manifest['files'])} files"
                 f"{', signature ok' if self.opts.public_key else ''})")
        release = Release(version, tarball, manifest)
        with self.ledger.exclusive(self.opts.env, service):
            read = self._read_ledger()
            live = read.live(self.opts.env, service)
            target = read.last_green(self.opts.env, service)
            self.say(f"rollback target: {target.id} ({target.version})" if target
                     else "rollback target: none (first green deployment of this service here)")
            dep = Deployment(
                id=new_id(), env=self.opts.env, service=service, version=version, commit=manifest.get("commit"),
                commit_time=manifest.get("commit_time"), started_at=utcnow(),
                previous=live.id if live else None, actor=self.opts.actor or manifest.get("actor"),
                backend=self.backend.name)
            self.ledger.append(dep)
            report = DeployReport(dep)
            failure = self._deploy_and_check(release, report)
            if failure is None:
                self.ledger.update(dep, status="green", finished_at=utcnow())
                self.say(f"deployment {dep.id}: {version} is GREEN in {self.opts.env}")
                return report
            self.ledger.update(dep, status="failed", finished_at=utcnow(), reason=failure)
            self.say(f"deployment {dep.id} FAILED: {failure}")
            if target is not None:
                report.rollback = self._rollback_to(target, replaced=dep, reason=f"automatic: {failure}")
                report.live_state = self._state_after_rollback(report.rollback, target)
            else:
                report.live_state = self._withdraw(version)
            self.say(f"{self.opts.env} now: {report.live_state}")
            rolled = report.rollback is not None and report.rollback.status == "green"
            report.incident_path = self._incident(dep, manifest, failure, target, report)
            self.ledger.update(dep, status="rolled_back" if rolled else "failed", incident=str(report.incident_path))
            return report

    def rollback(self, service: str, to_version: str | None = None, *, reason: str = "manual rollback",
                 incident: bool = False) -> DeployReport:
        """Manual rollback to ``to_version`` (a green version in the ledger) or the previous green one.

        With ``incident``, the incident text is written (and the GitHub issue opened) as for an automatic
        rollback; CI's rollback job uses it when a later step (e.g. the frontend deploy) failed."""
        env = self.opts.env
        with self.ledger.exclusive(env, service):
            read = self._read_ledger()
            live = read.live(env, service)
            if to_version:
                target = read.last_green(env, service, version=to_version)
            else:
                target = read.last_green(env, service, exclude={live.id} if live else None,
                                         not_version=live.version if live else None)
            if target is None:
                greens = sorted({d.version for d in read.history(env, service) if d.status == "green"})
                wanted = f"version {to_version}" if to_version else "an earlier green version"
                raise ConfigError(f"no green deployment of {service} in {env} with {wanted} in {self.ledger.path}; "
                                  f"green versions: {', '.join(greens) or 'none'}")
            self.say(f"rolling {service} in {env} back to {target.version} (deployment {target.id})")
            rb = self._rollback_to(target, replaced=live, reason=reason)
            report = DeployReport(rb, rollback=rb, live_state=self._state_after_rollback(rb, target))
            if live is not None:
                changes: dict = {"reason": f"{reason} (replaced by {rb.id})"} if rb.status == "green" else {}
                if incident:
                    manifest = {"branch": self.opts.branch}
                    report.incident_path = self._incident(live, manifest, reason, target, report)
                    changes["incident"] = str(report.incident_path)
                if rb.status == "green":
                    changes["status"] = "rolled_back"
                if changes:
                    self.ledger.update(live, **changes)
            return report

    # ------------------------------------------------------------ steps
    def _deploy_and_check(self, release: Release, report: DeployReport) -> str | None:
        try:
            outcome = self.backend.deploy(release)
        except HardeningError as exc:
            return f"deploy step failed: {exc}"
        except OSError as exc:
            return f"deploy step failed: {exc}"
        report.deployment.ref = outcome.ref
        self.say(f"deployed: {outcome.detail}")
        health = self._health(outcome, release.version)
        report.health = health
        if health is not None and not health.ok:
            return f"health check failed: {health.reason}"
        report.url = self._url(outcome)
        if self.opts.post_check:
            return self._post_check(report.url, release.version)
        return None

    def _url(self, outcome: Outcome) -> str | None:
        return outcome.url.rstrip("/") if outcome.url else None

    def _health(self, outcome: Outcome, version: str) -> HealthResult | None:
        if self.opts.skip_health:
            self.say("health check skipped (--no-health-check)")
            return None
        url = self.opts.health_url or (self._url(outcome) + self.opts.health_path if outcome.url else None)
        if url is None:
            return HealthResult(ok=False, reason="the backend gave no URL to check; pass --health-url")
        check_version = self.backend.reports_version if self.opts.check_version is None else self.opts.check_version
        result = wait_healthy(url, self.opts.policy, expect_version=version if check_version else None,
                              progress=lambda line: self.say("  health: " + line))
        self.say(f"health check {result.summary()}")
        return result

    def _post_check_argv(self) -> list[str]:
        cmd = self.opts.post_check or ""
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise ConfigError(f"--post-check {cmd!r} cannot be parsed: {exc}") from None
        if self.opts.post_check is not None and not argv:
            raise ConfigError("--post-check is empty: give a command, e.g. \"hardening loadtest --profile quick\"")
        return argv

    def _post_check(self, url: str | None, version: str) -> str | None:
        cmd = self.opts.post_check or ""
        argv = self._post_check_argv()
        env = {**os.environ, "HARDENING_DEPLOY_VERSION": version, "HARDENING_DEPLOY_ENV": self.opts.env}
        if url:
            env["HARDENING_DEPLOY_URL"] = env["BASE_URL"] = url
        self.say(f"post-deploy check: {cmd}")
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                                  timeout=self.opts.post_check_timeout_s, check=False)
        except FileNotFoundError:
            return f"post-deploy check command not found: {argv[0] if argv else cmd!r}"
        except subprocess.TimeoutExpired:
            return f"post-deploy check timed out after {self.opts.post_check_timeout_s:g}s"
        for line in (proc.stdout + proc.stderr).splitlines()[-20:]:
            self.say("  post-check: " + line)
        if proc.returncode != 0:
            return f"post-deploy check `{cmd}` exited {proc.returncode}"
        return None

    def _rollback_to(self, target: Deployment, replaced: Deployment | None, reason: str) -> Deployment:
        release = find_release(self.opts.artifacts_dir, target.version, self.opts.public_key)
        rb = Deployment(
            id=new_id(), env=self.opts.env, service=target.service, version=target.version, commit=target.commit,
            commit_time=target.commit_time, started_at=utcnow(), previous=replaced.id if replaced else None,
            rollback_of=replaced.id if replaced else None, reason=reason, actor=self.opts.actor or target.actor,
            backend=self.backend.name, ref=target.ref)
        self.ledger.append(rb)
        self.say(f"rollback {rb.id}: restoring {target.version}")
        try:
            outcome = self.backend.rollback(target.version, target.ref, release)
        except (HardeningError, OSError) as exc:
            return self.ledger.update(rb, status="failed", finished_at=utcnow(), reason=f"{reason}; rollback failed: {exc}")
        health = self._health(outcome, target.version)
        ok = health is None or health.ok
        status = "green" if ok else "failed"
        why = reason if ok else f"{reason}; rollback health check failed: {health.reason if health else ''}"
        self.ledger.update(rb, status=status, finished_at=utcnow(), reason=why, ref=outcome.ref or target.ref)
        self.say(f"rollback {rb.id}: {target.version} is {status.upper()}")
        return rb

    def _state_after_rollback(self, rb: Deployment, target: Deployment) -> str:
        if rb.status == "green":
            return f"release {target.version} is live again (rollback {rb.id}, health check passed)"
        return (f"the rollback to {target.version} FAILED ({rb.reason}); what {self.opts.env} serves now is "
                "unknown: check it by hand")

    def _withdraw(self, version: str) -> str:
        """No earlier green deployment: take the failed release down when the backend can, and say what is
        live. A release that keeps failing its health check is worse than none: callers get a clear
        connection error instead of a half-working service."""
        withdraw = getattr(self.backend, "withdraw", None)
        if withdraw is None:
            return (f"the failed release {version} may still be live: the {self.backend.name} backend cannot take "
                    "a release down and there is no earlier green deployment; take it down or fix forward by hand")
        try:
            return withdraw(version)
        except (HardeningError, OSError) as exc:
            return f"the failed release {version} may still be live: taking it down failed ({exc})"

    def _incident(self, dep: Deployment, manifest: dict, failure: str, target: Deployment | None,
                  report: DeployReport) -> Path:
        rb = report.rollback
        inc = incidents.Incident(
            env=dep.env, service=dep.service, failed_id=dep.id, failed_version=dep.version, reason=failure,
            commit=dep.commit, branch=self.opts.branch or manifest.get("branch"), actor=dep.actor,
            artifacts={dep.service.capitalize(): dep.version},
            rollback_target=f"{target.id} ({target.version})" if target else None,
            rollback_result=f"{rb.id} {rb.status}" + (f": {rb.reason}" if rb.status != "green" else "") if rb else None,
            run_url=self.opts.run_url or incidents.run_url_from_env(),
            health_log=report.health.log if report.health else [], live_state=report.live_state)
        path = incidents.write(inc, self.opts.incident_dir)
        self.say(f"incident written to {path}")
        if self.opts.open_issue:
            result = incidents.open_issue(inc, path, repo=self.opts.repo)
            report.issue = f"{result.action}: {result.detail}"
            self.say(f"GitHub issue {report.issue}")
        return path


def deploy_exit(report: DeployReport) -> None:
    """Raise CheckFailed (exit 1) with the story when a deploy did not end green."""
    if report.ok:
        return
    dep, rb = report.deployment, report.rollback
    if rb is not None and rb.status == "green":
        raise CheckFailed(f"deploy of {dep.version} failed ({dep.reason}); rolled back to {rb.version} "
                          f"(deployment {rb.id}); incident: {report.incident_path}")
    if rb is not None:
        raise CheckFailed(f"deploy of {dep.version} failed ({dep.reason}) and the rollback to {rb.version} "
                          f"FAILED too ({rb.reason}); incident: {report.incident_path}")
    raise CheckFailed(f"deploy of {dep.version} failed ({dep.reason}); no earlier green deployment to roll back "
                      f"to; {report.live_state}; incident: {report.incident_path}")
