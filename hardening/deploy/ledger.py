"""The deployment ledger: an append-only JSON-lines record of every deployment (fields: docs/deploy.md).

One object per event line; the latest line for an ``id`` is that deployment's current state. Each line
is written with a single ``os.write`` on an ``O_APPEND`` descriptor while holding an exclusive
``fcntl.flock``, so concurrent writers (processes or threads) never interleave or lose a line.
Everything written goes through ``mask_obj``.

Reading validates every line (``read_events``): a bad line is skipped and reported in ``LedgerRead.warnings``
with its line number (the library never prints); times are compared as datetimes, never as strings.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
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
TIME_FIELDS = ("commit_time", "started_at", "finished_at")
_NO_TIME = datetime.min.replace(tzinfo=UTC)


def parse_time(value: str) -> datetime:
    """An ISO 8601 time as an aware datetime (a time without offset is UTC); ValueError when malformed."""
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _time_key(*values: str | None) -> datetime:
    """Sort key: the first of ``values`` that is set, as a datetime (lines are validated on read)."""
    for value in values:
        if value:
            return parse_time(value)
    return _NO_TIME


def _line_problem(obj: Any) -> str | None:
    """Why a parsed ledger line cannot be a deployment state (None when it can)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    missing = [k for k in REQUIRED if not obj.get(k)]
    if missing:
        return f"missing {', '.join(missing)}"
    if obj.get("status") not in STATUSES:
        return f"unknown status {str(obj.get('status'))[:40]!r}"
    wrong = [k for k in TEXT_FIELDS if obj.get(k) is not None and not isinstance(obj[k], str)]
    if wrong:
        return f"{', '.join(wrong)} not text"
    for key in TIME_FIELDS:
        if obj.get(key):
            try:
                parse_time(obj[key])
            except ValueError:
                return f"{key} {obj[key][:40]!r} is not an ISO 8601 time"
    return None


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


@dataclass(frozen=True)
class LedgerRead:
    """One read of the ledger: the usable event lines in order, and a warning per skipped line
    (``"<path>:<line>: <why>"``). Commands print the warnings (``warning: …`` on stderr)."""

    path: Path
    events: list[dict[str, Any]]
    warnings: list[str]

    def states(self) -> list[Deployment]:
        """Current state of each deployment (its latest line), in order of first appearance."""
        latest: dict[str, dict[str, Any]] = {}
        for event in self.events:
            latest[event["id"]] = event
        return [Deployment.from_dict(v) for v in latest.values()]

    def history(self, env: str, service: str) -> list[Deployment]:
        """Deployments of one service in one environment, oldest first (by start time, as datetimes)."""
        rows = [d for d in self.states() if d.env == env and d.service == service]
        return sorted(rows, key=lambda d: _time_key(d.started_at))

    def live(self, env: str, service: str) -> Deployment | None:
        """The deployment currently serving: the latest one that is green (not replaced by a rollback)."""
        greens = [d for d in self.history(env, service) if d.status == "green"]
        return greens[-1] if greens else None

    def last_green(self, env: str, service: str, exclude: set[str] | None = None,
                   version: str | None = None, not_version: str | None = None) -> Deployment | None:
        """The most recent green deployment (by finish time, as datetimes), skipping ids in ``exclude``;
        optionally only of ``version``, or of any version but ``not_version``."""
        greens = [d for d in self.history(env, service)
                  if d.status == "green" and d.id not in (exclude or set())
                  and (version is None or d.version == version)
                  and (not_version is None or d.version != not_version)]
        greens.sort(key=lambda d: _time_key(d.finished_at, d.started_at))
        return greens[-1] if greens else None


def read_events(path: Path) -> LedgerRead:
    """Read and validate a ledger file (shared lock while reading).

    A line that is not JSON, misses a required field, has an unknown status, a non-text field or a
    timestamp that is not ISO 8601 is skipped with a warning naming its line number; it is never used.
    FileNotFoundError propagates (the caller decides whether a missing ledger is an empty one).
    ConfigError (exit 2) when the file cannot be read, or when it has lines but none is usable.
    """
    try:
        with open(path, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
            try:
                data = fh.read()
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"deployment ledger {path} cannot be read ({exc.strerror or exc}); fix the file or "
                          "its permissions, or pass --ledger with the right path") from None
    events, problems = parse_events(data)
    warnings = [f"{path}:{problem}" for problem in problems]
    if problems and not events:
        raise ConfigError(f"deployment ledger {path} has no usable line ({len(problems)} unusable; first: "
                          f"line {problems[0]}); restore it from a backup or pass --ledger with the right path")
    return LedgerRead(Path(path), events, warnings)


class Ledger:
    def __init__(self, path: Path = DEFAULT_LEDGER) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []   # those of the latest read (see ``read``)

    # ------------------------------------------------------------ writing
    def append(self, deployment: Deployment | dict[str, Any]) -> dict[str, Any]:
        """Append one event line (masked). Returns what was written.

        A torn last line (a writer killed mid-line: no trailing newline) is closed first, so the new line
        starts on a line of its own and is never swallowed by the torn one (which readers skip)."""
        record = deployment.to_dict() if isinstance(deployment, Deployment) else dict(deployment)
        if record.get("status") not in STATUSES:
            raise ConfigError(f"ledger status must be one of {STATUSES}, got {record.get('status')!r}")
        if not record.get("id"):
            raise ConfigError("ledger record needs an id")
        record = mask_obj(record)
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InfraError(f"cannot open ledger {self.path} for appending: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line
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
    def read(self) -> LedgerRead:
        """The ledger's valid events and the warnings for skipped lines (``read_events``); a missing
        ledger is an empty one. ConfigError when it exists but cannot be read or has no usable line."""
        try:
            result = read_events(self.path)
        except FileNotFoundError:
            result = LedgerRead(self.path, [], [])
        self.warnings = result.warnings
        return result

    # Shortcuts for one question each (each reads the file once; its warnings land in ``self.warnings``).
    def events(self) -> list[dict[str, Any]]:
        return self.read().events

    def states(self) -> list[Deployment]:
        return self.read().states()

    def history(self, env: str, service: str) -> list[Deployment]:
        return self.read().history(env, service)

    def live(self, env: str, service: str) -> Deployment | None:
        return self.read().live(env, service)

    def last_green(self, env: str, service: str, exclude: set[str] | None = None,
                   version: str | None = None, not_version: str | None = None) -> Deployment | None:
        return self.read().last_green(env, service, exclude, version, not_version)

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
