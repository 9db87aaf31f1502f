"""The deployment ledger: an append-only JSON-lines record of every deployment (see CONTRACTS.md).

One object per event line; the latest line for an ``id`` is that deployment's current state. Each line
is written with a single ``os.write`` on an ``O_APPEND`` descriptor while holding an exclusive
``fcntl.flock``, so concurrent writers (processes or threads) never interleave or lose a line.
Everything written goes through ``mask_obj``.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hardening.errors import ConfigError, InfraError
from hardening.masking import mask_obj

DEFAULT_LEDGER = Path("data/deployments/ledger.jsonl")
STATUSES = ("in_progress", "green", "failed", "rolled_back")


def utcnow() -> str:
    return datetime.now(UTC).isoformat()


def new_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"dep-{now.astimezone(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class Deployment:
    id: str
    env: str
    service: str
    version: str
    commit: str | None = None
    commit_time: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    status: str = "in_progress"
    previous: str | None = None
    rollback_of: str | None = None
    incident: str | None = None
    reason: str | None = None
    actor: str | None = None
    # Extensions (readers ignore unknown keys): which backend, and its own handle for the deployment
    # (Vercel URL, Railway deployment id, local release path) so a rollback can target it.
    backend: str | None = None
    ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


REQUIRED = ("id", "env", "service", "version")
TEXT_FIELDS = tuple(f.name for f in fields(Deployment))  # every field is a string or null


def _line_problem(obj: Any) -> str | None:
    """Why a parsed ledger line cannot be a deployment state (None when it can)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    missing = [k for k in REQUIRED if not obj.get(k)]
    if missing:
        return f"missing {', '.join(missing)}"
    if obj.get("status") not in STATUSES:
        return f"unknown status {obj.get('status')!r}"
    wrong = [k for k in TEXT_FIELDS if obj.get(k) is not None and not isinstance(obj[k], str)]
    return f"{', '.join(wrong)} not text" if wrong else None


def parse_events(data: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """Event objects of a ledger file's bytes, and ``"<line>: <why skipped>"`` for each unusable line."""
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            problems.append(f"{number}: unreadable ledger line skipped")
            continue
        problem = _line_problem(obj)
        if problem:
            problems.append(f"{number}: ledger line skipped ({problem})")
        else:
            events.append(obj)
    return events, problems


class Ledger:
    def __init__(self, path: Path = DEFAULT_LEDGER) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------ writing
    def append(self, deployment: Deployment | dict[str, Any]) -> dict[str, Any]:
        """Append one event line (masked). Returns what was written."""
        record = deployment.to_dict() if isinstance(deployment, Deployment) else dict(deployment)
        if record.get("status") not in STATUSES:
            raise ConfigError(f"ledger status must be one of {STATUSES}, got {record.get('status')!r}")
        if not record.get("id"):
            raise ConfigError("ledger record needs an id")
        record = mask_obj(record)
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InfraError(f"cannot open ledger {self.path} for appending: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise InfraError(f"short write to ledger {self.path} ({written}/{len(line)} bytes)")
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return record

    def update(self, deployment: Deployment, **changes: Any) -> Deployment:
        """Append a new state of ``deployment`` (the object is updated in place and returned)."""
        for key, value in changes.items():
            setattr(deployment, key, value)
        self.append(deployment)
        return deployment

    # ------------------------------------------------------------ reading
    def events(self) -> list[dict[str, Any]]:
        """Every event line in order. A malformed line (cut by a crash, edited by hand, missing fields) is
        skipped with a warning on stderr naming its line number."""
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
            try:
                data = fh.read()
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        events, problems = parse_events(data)
        for problem in problems:
            print(f"warning: {self.path}:{problem}", file=sys.stderr)
        return events

    def states(self) -> list[Deployment]:
        """Current state of each deployment (its latest line), in order of first appearance."""
        latest: dict[str, dict[str, Any]] = {}
        for event in self.events():
            latest[event["id"]] = event
        return [Deployment.from_dict(v) for v in latest.values()]

    def get(self, deployment_id: str) -> Deployment | None:
        return next((d for d in self.states() if d.id == deployment_id), None)

    def history(self, env: str, service: str) -> list[Deployment]:
        """Deployments of one service in one environment, oldest first (by start time)."""
        rows = [d for d in self.states() if d.env == env and d.service == service]
        return sorted(rows, key=lambda d: d.started_at or "")

    def live(self, env: str, service: str) -> Deployment | None:
        """The deployment currently serving: the latest one that is green (not replaced by a rollback)."""
        greens = [d for d in self.history(env, service) if d.status == "green"]
        return greens[-1] if greens else None

    def last_green(self, env: str, service: str, exclude: set[str] | None = None,
                   version: str | None = None, not_version: str | None = None) -> Deployment | None:
        """The most recent green deployment (by finish time), skipping ids in ``exclude``; optionally
        only of ``version``, or of any version but ``not_version``."""
        greens = [d for d in self.history(env, service)
                  if d.status == "green" and d.id not in (exclude or set())
                  and (version is None or d.version == version)
                  and (not_version is None or d.version != not_version)]
        greens.sort(key=lambda d: d.finished_at or d.started_at or "")
        return greens[-1] if greens else None

    def green_versions(self) -> set[str]:
        return {d.version for d in self.states() if d.status == "green"}

    @contextmanager
    def exclusive(self, env: str, service: str) -> Iterator[None]:
        """Hold a per-environment/service deploy lock; a second deploy at the same time fails fast."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.parent / f".deploy-{env}-{service}.lock"
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InfraError(f"another deploy of {service} to {env} is in progress (lock {lock_path})") from None
            yield
        finally:
            os.close(fd)
