"""Incident text in the seed's format, written masked, and the GitHub issue that carries it.

The issue is opened with ``gh issue create -t TITLE -F body.md -l LABEL -R owner/repo`` when ``GH_TOKEN``
(or ``GITHUB_TOKEN``) is set. An open issue with the same title is found first with
``gh issue list --search`` and gets a comment instead, so repeated failures never pile up duplicates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hardening.masking import mask

DEFAULT_LABEL = "rollback"


@dataclass
class Incident:
    env: str
    service: str
    failed_id: str
    failed_version: str
    reason: str
    commit: str | None = None
    branch: str | None = None
    actor: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # label ("Backend") -> version
    rollback_target: str | None = None          # "dep-… (backend-…)" or None when there was none
    rollback_result: str | None = None          # "green: 3 consecutive healthy probes" / "failed: …"
    run_url: str | None = None
    health_log: list[str] = field(default_factory=list)
    # What the environment serves now, in words: "release X is live again (…)", "no release is live: …".
    live_state: str | None = None
    when: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def title(self) -> str:
        # Stable per service and environment, so an open issue is reused instead of duplicated.
        return f"Automatic rollback: {self.service} in {self.env}"


def run_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The GitHub Actions run link when running in Actions."""
    environ = os.environ if environ is None else environ
    server, repo, run = (environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if repo and run:
        return f"{server or 'https://github.com'}/{repo}/actions/runs/{run}"
    return None


def render(incident: Incident) -> str:
    """Markdown in the seed's format (heading, commit/branch/actor, artifacts, rollback target, run link),
    plus what the environment serves now (``live_state``)."""
    actor = incident.actor or "unknown"
    lines = [
        "## 🚨 Automatic Rollback Triggered",
        "",
        f"**Commit:** {incident.commit or 'unknown'}",
        f"**Branch:** {incident.branch or 'unknown'}",
        f"**Actor:** {actor if actor.startswith('@') or actor == 'unknown' else '@' + actor}",
        "",
    ]
    artifacts = incident.artifacts or {incident.service.capitalize(): incident.failed_version}
    lines += [f"**{label} Artifact:** {version}" for label, version in artifacts.items()]
    lines += [
        "",
        f"**Rollback Target:** {incident.rollback_target or 'none (no earlier green deployment in the ledger)'}",
        f"**Live now in {incident.env}:** {incident.live_state or 'unknown'}",
        "",
    ]
    if incident.run_url:
        lines += [f"[View Workflow Run]({incident.run_url})", ""]
    lines += [
        "### Details",
        "",
        f"- Environment: {incident.env}",
        f"- Failed deployment: {incident.failed_id} ({incident.failed_version})",
        f"- Reason: {incident.reason}",
        f"- Rollback: {incident.rollback_result or 'not attempted'}",
        f"- Time: {incident.when}",
    ]
    if incident.health_log:
        lines += ["", "<details><summary>Health check log</summary>", "", "```"]
        lines += incident.health_log[-25:]
        lines += ["```", "", "</details>"]
    return mask("\n".join(lines) + "\n")


def write(incident: Incident, directory: Path) -> Path:
    """Write the incident text to ``directory/<failed id>.md`` (masked) and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{incident.failed_id}.md"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(incident), encoding="utf-8")
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class IssueResult:
    action: str          # "created", "commented", "skipped"
    detail: str


def open_issue(incident: Incident, body_path: Path, *, repo: str | None = None, label: str = DEFAULT_LABEL,
               gh: str = "gh", environ: Mapping[str, str] | None = None, timeout_s: float = 60) -> IssueResult:
    """Create the GitHub issue (or comment on the open one with the same title). Never raises."""
    environ = dict(os.environ if environ is None else environ)
    if not (environ.get("GH_TOKEN") or environ.get("GITHUB_TOKEN")):
        return IssueResult("skipped", "GH_TOKEN not set: no GitHub issue opened")
    exe = shutil.which(gh, path=environ.get("PATH"))
    if exe is None:
        return IssueResult("skipped", f"{gh!r} not found on PATH: no GitHub issue opened")
    repo = repo or environ.get("GITHUB_REPOSITORY")
    repo_args = ["-R", repo] if repo else []

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args, *repo_args], capture_output=True, text=True, env=environ,
                              timeout=timeout_s, check=False)

    try:
        listed = run(["issue", "list", "--state", "open", "--search", f"{incident.title} in:title",
                      "--json", "number,title"])
        if listed.returncode == 0:
            try:
                found = [i for i in json.loads(listed.stdout or "[]") if i.get("title") == incident.title]
            except (json.JSONDecodeError, AttributeError):
                found = []
            if found:
                number = str(found[0]["number"])
                done = run(["issue", "comment", number, "-F", str(body_path)])
                if done.returncode == 0:
                    return IssueResult("commented", f"commented on open issue #{number}")
                return IssueResult("skipped", f"gh issue comment failed: {mask(done.stderr.strip())[:300]}")
        created = run(["issue", "create", "-t", incident.title, "-F", str(body_path), "-l", label])
        if created.returncode != 0 and "label" in created.stderr.lower():
            created = run(["issue", "create", "-t", incident.title, "-F", str(body_path)])
        if created.returncode == 0:
            return IssueResult("created", mask(created.stdout.strip()) or "issue created")
        return IssueResult("skipped", f"gh issue create failed: {mask(created.stderr.strip())[:300]}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return IssueResult("skipped", f"gh failed: {mask(str(exc))}")
