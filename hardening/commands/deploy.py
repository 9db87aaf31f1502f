"""``hardening artifact|env|deploy|rollback``: artifacts, environments and safe deploys."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from hardening.deploy import artifacts, environments
from hardening.deploy.backends import Backend
from hardening.deploy.deployer import Deployer, DeployOptions, DeployReport, deploy_exit
from hardening.deploy.health import HealthPolicy
from hardening.deploy.ledger import DEFAULT_LEDGER, Ledger
from hardening.errors import CheckFailed, ConfigError
from hardening.masking import mask
from hardening.record.writer import git_info

BACKENDS = ("local", "vercel", "railway")


def _github_output(**values: object) -> None:
    """Append ``key=value`` lines to ``$GITHUB_OUTPUT`` when running in GitHub Actions."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in values.items():
            fh.write(f"{key}={mask('' if value is None else str(value))}\n")


def _commit_time(commit: str) -> str | None:
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%cI", commit], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"warning: {mask(line)}", file=sys.stderr, flush=True)


def _public_key(value: str | None) -> Path | None:
    value = value or os.environ.get(artifacts.PUBLIC_KEY_ENV)
    return Path(value) if value else None


# ---------------------------------------------------------------- artifact
def cmd_artifact_build(args: argparse.Namespace) -> int:
    info = git_info()
    commit = args.commit or info["commit"]
    if not commit:
        raise ConfigError("no commit known: pass --commit SHA (or run inside a git checkout / set GITHUB_SHA)")
    result = artifacts.build_artifact(
        args.service, [Path(p) for p in args.paths], Path(args.out), commit=commit,
        commit_time=args.commit_time or _commit_time(commit), branch=args.branch or info["branch"],
        actor=args.actor or info["actor"], base=Path(args.base), sign_key=Path(args.sign_key) if args.sign_key else None,
        run_url=os.environ.get("GITHUB_RUN_ID") and (
            f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ.get('GITHUB_REPOSITORY')}"
            f"/actions/runs/{os.environ['GITHUB_RUN_ID']}"),
        repository=os.environ.get("GITHUB_REPOSITORY") and
        f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ['GITHUB_REPOSITORY']}")
    print(f"version   {result.version}")
    print(f"artifact  {result.tarball}")
    print(f"manifest  {result.manifest} (and {result.service_manifest.name})")
    print(f"provenance {result.provenance}")
    if result.signature:
        print(f"signature {result.signature}")
    _github_output(version=result.version, artifact=result.tarball, manifest=result.manifest)
    return 0


def cmd_artifact_verify(args: argparse.Namespace) -> int:
    manifest = artifacts.verify_artifact(
        Path(args.artifact), Path(args.manifest) if args.manifest else None, public_key=_public_key(args.public_key),
        expect_service=args.service, expect_version=args.expect_version, expect_commit=args.commit)
    signed = " and signatures (manifest, provenance)" if _public_key(args.public_key) else ""
    print(f"OK {manifest['version']}: {len(manifest['files'])} files, tarball sha256{signed} verified")
    return 0


def cmd_artifact_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out_dir)
    private, public = out / f"{args.name}.key", out / f"{args.name}.pub"
    artifacts.generate_keypair(private, public, force=args.force)
    print(f"private key {private} (mode 0600: keep it secret, e.g. a CI secret)")
    print(f"public key  {public} (pin it: --public-key or {artifacts.PUBLIC_KEY_ENV})")
    return 0


def _green_versions(ledger_path: Path) -> set[str]:
    """Every version the ledger marks green; ConfigError (exit 2) naming ``--no-ledger`` when the ledger
    cannot be read, since pruning without it could delete the rollback target."""
    hint = ("prune keeps the versions the ledger marks green (the rollback targets); pass --ledger with the "
            "right path, or --no-ledger to prune without it (each service's newest artifact is still kept)")
    if not ledger_path.exists():
        raise ConfigError(f"cannot read the deployment ledger {ledger_path}: it does not exist; {hint}")
    try:
        read = Ledger(ledger_path).read()
    except ConfigError as exc:
        raise ConfigError(f"{exc}; {hint}") from None
    _warn(read.warnings)
    return {d.version for d in read.states() if d.status == "green"}


def cmd_artifact_prune(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        raise ConfigError(f"artifact directory {directory} does not exist")
    protect = set() if args.no_ledger else _green_versions(Path(args.ledger))
    newest = artifacts.newest_versions(directory)
    removed = artifacts.prune(directory, args.keep_days, protect=protect, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in removed:
        print(f"{verb} {path}")
    ledger_note = ("ledger not read (--no-ledger)" if args.no_ledger
                   else f"{len(protect)} green version(s) from the ledger protected")
    print(f"{verb} {len(removed)} file(s) older than {args.keep_days} days; {ledger_note}; "
          f"newest per service kept: {', '.join(sorted(newest.values())) or 'none'}")
    return 0


# ---------------------------------------------------------------- env
def cmd_env_resolve(args: argparse.Namespace) -> int:
    ref = args.ref or os.environ.get("GITHUB_REF")
    if not ref:
        raise ConfigError("pass --ref refs/heads/BRANCH (or set GITHUB_REF)")
    env = environments.resolve(ref, _env_config(args))
    print(env)
    _github_output(environment=env)
    return 0


def _env_config(args: argparse.Namespace) -> environments.EnvironmentConfig:
    path = environments.find_config(Path(args.config) if args.config else None)
    if path is not None and not args.config:
        print(f"hardening: using environment config {path} (found in the current directory; --config FILE to "
              "choose another)", file=sys.stderr)
    return environments.load_config(path)


def cmd_env_check(args: argparse.Namespace) -> int:
    config = _env_config(args)
    if args.require:
        config = dataclasses.replace(config, required_secrets={**config.required_secrets,
                                                               args.env: list(args.require)})
    result = environments.check_secrets(args.env, config)
    print(environments.check_json(result) if args.json else environments.check_report(result))
    if not result.ok:
        raise CheckFailed(f"environment {args.env}: missing secrets {', '.join(result.missing)} "
                          "(set them as environment secrets; values are never printed)")
    return 0


# ---------------------------------------------------------------- deploy / rollback
def _backend(args: argparse.Namespace, service: str | None) -> Backend:
    if args.backend == "local":
        from hardening.deploy.backends.local import LocalBackend
        root = Path(args.root or f".deploy/{args.env}")
        return LocalBackend(root, host=args.host, port=args.port, keep_releases=args.keep_releases)
    if args.backend == "vercel":
        from hardening.deploy.backends.vercel import VercelBackend
        return VercelBackend(args.env, scope=args.vercel_scope, promote=args.vercel_promote)
    from hardening.deploy.backends.railway import RailwayBackend
    if not (args.url or args.health_url or args.no_health_check):
        raise ConfigError("the railway backend needs --url (the service's public URL) or --health-url "
                          "to health-check the deploy (or --no-health-check)")
    return RailwayBackend(args.env, service=args.railway_service or service or "backend", public_url=args.url)


def _options(args: argparse.Namespace) -> DeployOptions:
    policy = HealthPolicy(grace_s=args.health_grace, interval_s=args.health_interval,
                          max_interval_s=args.health_max_interval, backoff=args.health_backoff,
                          jitter=args.health_jitter, successes=args.health_successes,
                          deadline_s=args.health_deadline, max_attempts=args.health_attempts,
                          timeout_s=args.health_timeout)
    info = git_info()
    return DeployOptions(
        env=args.env, policy=policy, health_path=args.health_path, health_url=args.health_url,
        skip_health=args.no_health_check, post_check=getattr(args, "post_check", None),
        public_key=_public_key(args.public_key), artifacts_dir=Path(args.artifacts_dir),
        incident_dir=Path(args.incident_dir), open_issue=not args.no_issue, repo=args.repo,
        actor=os.environ.get("GITHUB_ACTOR") or None, branch=info["branch"])


def _report(report: DeployReport) -> None:
    dep = report.deployment
    _github_output(deployment_id=dep.id, version=dep.version, status=dep.status, url=report.url or "",
                   incident=report.incident_path or "")


def cmd_deploy(args: argparse.Namespace) -> int:
    tarball = Path(args.artifact)
    manifest = Path(args.manifest) if args.manifest else None
    service = artifacts.parse_version(tarball.name.removesuffix(".tar.gz"))["service"] \
        if artifacts.VERSION_RE.match(tarball.name.removesuffix(".tar.gz")) else None
    deployer = Deployer(_backend(args, service), Ledger(Path(args.ledger)), _options(args))
    report = deployer.deploy(tarball, manifest)
    _report(report)
    deploy_exit(report)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    deployer = Deployer(_backend(args, args.service), Ledger(Path(args.ledger)), _options(args))
    report = deployer.rollback(args.service, args.to, reason=args.reason, incident=args.incident)
    _report(report)
    if report.deployment.status != "green":
        raise CheckFailed(f"rollback to {report.deployment.version} failed: {report.deployment.reason}")
    print(f"rolled back {args.service} in {args.env} to {report.deployment.version}")
    return 0


def _deploy_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True, help="target environment (see `hardening env resolve`)")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="where to deploy (default: local)")
    p.add_argument("--ledger", default=str(DEFAULT_LEDGER), help=f"deployment ledger (default: {DEFAULT_LEDGER})")
    p.add_argument("--artifacts-dir", default="artifacts",
                   help="where earlier artifacts are found for rollbacks (default: artifacts)")
    p.add_argument("--public-key", help=f"pinned Ed25519 public key (default: ${artifacts.PUBLIC_KEY_ENV})")
    p.add_argument("--incident-dir", default="data/deployments/incidents", help="where incident texts go")
    p.add_argument("--no-issue", action="store_true", help="never open a GitHub issue (default: open one "
                   "when GH_TOKEN is set)")
    p.add_argument("--repo", help="owner/repo for the incident issue (default: $GITHUB_REPOSITORY)")
    h = p.add_argument_group("health check")
    h.add_argument("--health-path", default="/health", help="path appended to the deployment URL (default /health)")
    h.add_argument("--health-url", help="full health URL (overrides the deployment URL + --health-path)")
    h.add_argument("--no-health-check", action="store_true", help="skip the health check (not recommended)")
    h.add_argument("--health-grace", type=float, default=5.0, help="seconds before the first probe (default 5)")
    h.add_argument("--health-interval", type=float, default=2.0, help="base seconds between probes (default 2)")
    h.add_argument("--health-max-interval", type=float, default=15.0, help="backoff cap in seconds (default 15)")
    h.add_argument("--health-backoff", type=float, default=2.0, help="backoff factor per failure (default 2)")
    h.add_argument("--health-jitter", type=float, default=0.2, help="jitter fraction (default 0.2)")
    h.add_argument("--health-successes", type=int, default=3, help="consecutive successes needed (default 3)")
    h.add_argument("--health-deadline", type=float, default=180.0, help="give up after seconds (default 180)")
    h.add_argument("--health-attempts", type=int, default=20, help="max probes (default 20, the seed's)")
    h.add_argument("--health-timeout", type=float, default=5.0, help="per-probe timeout seconds (default 5)")
    b = p.add_argument_group("backends")
    b.add_argument("--root", help="local: deploy root with releases/ and current (default .deploy/<env>)")
    b.add_argument("--host", default="127.0.0.1", help="local: service host (default 127.0.0.1)")
    b.add_argument("--port", type=int, default=8080, help="local: service port (default 8080)")
    b.add_argument("--keep-releases", type=int, default=5, help="local: releases kept on disk (default 5)")
    b.add_argument("--vercel-scope", help="vercel: --scope (team)")
    b.add_argument("--vercel-promote", action="store_true",
                   help="vercel: roll back with `vercel promote <url>` instead of `vercel rollback <url>`")
    b.add_argument("--railway-service", help="railway: service name (default: the artifact's service)")
    b.add_argument("--url", help="railway: the service's public URL, for the health check")


def register(subparsers) -> None:
    # artifact
    art = subparsers.add_parser("artifact", help="build, verify, sign and prune versioned artifacts")
    art_sub = art.add_subparsers(dest="artifact_command", metavar="ACTION", required=True)
    b = art_sub.add_parser("build", help="package files into <service>-<YYYYMMDD-HHMMSS>-<sha7>.tar.gz + manifest")
    b.add_argument("paths", nargs="+", help="files or directories to package (relative to --base)")
    b.add_argument("--service", required=True, help="service name, e.g. backend or frontend")
    b.add_argument("--out", default="artifacts", help="output directory (default: artifacts)")
    b.add_argument("--base", default=".", help="directory the archive paths are relative to (default: .)")
    b.add_argument("--commit", help="commit sha (default: $GITHUB_SHA or git HEAD)")
    b.add_argument("--commit-time", help="commit time ISO 8601 (default: from git)")
    b.add_argument("--branch", help="branch (default: $GITHUB_REF_NAME or git)")
    b.add_argument("--actor", help="who built it (default: $GITHUB_ACTOR or $USER)")
    b.add_argument("--sign-key", help="Ed25519 private key (PEM) to sign the manifest and provenance")
    b.set_defaults(func=cmd_artifact_build)
    v = art_sub.add_parser("verify", help="verify an artifact against its manifest (exit 1 with the reason)")
    v.add_argument("artifact", help="the .tar.gz")
    v.add_argument("--manifest", help="manifest (default: <version>.manifest.json or <service>-manifest.json beside it)")
    v.add_argument("--public-key", help=f"pinned public key; when set the signature is required "
                   f"(default: ${artifacts.PUBLIC_KEY_ENV})")
    v.add_argument("--service", help="expected service name")
    v.add_argument("--expect-version", help="expected version")
    v.add_argument("--commit", help="expected commit (prefix)")
    v.set_defaults(func=cmd_artifact_verify)
    k = art_sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    k.add_argument("--out-dir", default="keys", help="directory (default: keys)")
    k.add_argument("--name", default="artifact", help="file stem: NAME.key and NAME.pub (default: artifact)")
    k.add_argument("--force", action="store_true", help="overwrite existing keys")
    k.set_defaults(func=cmd_artifact_keygen)
    pr = art_sub.add_parser("prune", help="delete artifacts older than --keep-days (seed: 30), never a "
                            "service's newest one nor a version the ledger marks green")
    pr.add_argument("--dir", default="artifacts", help="artifact directory (default: artifacts)")
    pr.add_argument("--keep-days", type=int, default=30, help="retention in days (default 30)")
    pr.add_argument("--ledger", default=str(DEFAULT_LEDGER),
                    help="green versions in this ledger are never pruned; an unreadable or missing ledger "
                    f"stops the prune (exit 2) (default: {DEFAULT_LEDGER})")
    pr.add_argument("--no-ledger", action="store_true",
                    help="prune without reading the ledger (each service's newest artifact is still kept)")
    pr.add_argument("--dry-run", action="store_true", help="only list what would go")
    pr.set_defaults(func=cmd_artifact_prune)

    # env
    env = subparsers.add_parser("env", help="environments: branch -> environment, required secrets")
    env_sub = env.add_subparsers(dest="env_command", metavar="ACTION", required=True)
    r = env_sub.add_parser("resolve", help="print the environment a git ref deploys to")
    r.add_argument("--ref", help="git ref, e.g. refs/heads/main (default: $GITHUB_REF)")
    r.add_argument("--config", help="YAML/JSON with branches/default/required_secrets "
                   f"(default: {environments.DEFAULT_CONFIG} if present, else main -> production)")
    r.set_defaults(func=cmd_env_resolve)
    c = env_sub.add_parser("check", help="check the environment's required secrets are set (names only)")
    c.add_argument("--env", required=True, help="environment name")
    c.add_argument("--config", help="YAML/JSON with branches/default/required_secrets "
                   f"(default: {environments.DEFAULT_CONFIG} if present)")
    c.add_argument("--require", action="append", metavar="NAME",
                   help="required secret name (repeatable; replaces the configured list for this environment)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=cmd_env_check)

    # deploy / rollback
    d = subparsers.add_parser("deploy", help="verify, deploy, health-check; roll back automatically on failure")
    d.add_argument("--artifact", required=True, help="the artifact .tar.gz")
    d.add_argument("--manifest", help="its manifest (default: found beside it)")
    d.add_argument("--post-check", help="command run after a healthy deploy, e.g. "
                   "\"hardening loadtest --profile quick\"; non-zero exit = failed deploy. "
                   "It gets BASE_URL / HARDENING_DEPLOY_URL")
    _deploy_common(d)
    d.set_defaults(func=cmd_deploy)
    rb = subparsers.add_parser("rollback", help="roll back by hand to the previous (or a given) green version")
    rb.add_argument("--service", required=True, help="service name, e.g. backend")
    rb.add_argument("--to", help="version to roll back to (must have been green in this environment)")
    rb.add_argument("--reason", default="manual rollback", help="why (recorded in the ledger and incident)")
    rb.add_argument("--incident", action="store_true",
                    help="write the incident text and (with GH_TOKEN) open/comment the GitHub issue")
    _deploy_common(rb)
    rb.set_defaults(func=cmd_rollback)
