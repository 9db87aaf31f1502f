"""Deployment metrics (DORA style) from the deployment ledger (``data/deployments/ledger.jsonl``).

The ledger is append-only JSON lines; the latest line for an id is that deployment's state
(fields: docs/deploy.md, "Ledger"). Definitions used here (per environment, optionally per service):

- deployment frequency: finished deployments per day over the span first start → last start (rollbacks
  included: they are deployments too); ``deploys_per_week`` = × 7;
- change failure rate: changes (deployments that are not rollbacks) whose status is ``failed`` or
  ``rolled_back``, divided by finished changes;
- rollback frequency: rollbacks (``rollback_of`` set) per finished change, and their count;
- time to detect: for a failed/rolled-back change, ``finished_at − started_at`` (deploy start → marked bad);
- time to roll back: the rollback's ``finished_at`` − the bad deployment's ``finished_at``;
  time to restore: rollback ``finished_at`` − bad deployment ``started_at`` (green again);
- lead time: ``commit_time`` → ``finished_at`` of green changes.
Durations are reported in seconds (median and p90).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass

import pandas as pd

from hardening.deploy.ledger import read_events
from hardening.errors import ConfigError
from hardening.record.reader import RecordWarning, resolve_path

COLUMNS = ["id", "env", "service", "version", "commit", "commit_time", "started_at", "finished_at", "status",
           "previous", "rollback_of", "incident", "reason", "actor"]
TIME_COLUMNS = ("commit_time", "started_at", "finished_at")
BAD = ("failed", "rolled_back")


def read_ledger(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Current state of every deployment (latest line per id), ordered by start time.

    Every line is validated as ``hardening deploy`` validates it (``hardening.deploy.ledger.read_events``):
    a line that is not JSON, misses ``id``/``env``/``service``/``version``, has an unknown status, a
    non-text field or a time that is not ISO 8601 is skipped, never used.

    Warnings: one per skipped line, ``"<path>:<line>: <why>"``, in ``df.attrs["warnings"]`` (a list of
    str; ``df.attrs["skipped"]`` is its length). Each is also issued as a ``RecordWarning``
    (``hardening.record.reader``), which a notebook shows; a command that prints ``df.attrs["warnings"]``
    itself (as ``warning: …`` on stderr) should silence those with
    ``warnings.simplefilter("ignore", RecordWarning)`` inside ``warnings.catch_warnings()``.

    Raises ConfigError (exit 2) when the file is missing or cannot be read, or when it has lines but none
    is usable (a file of garbage). An empty file gives an empty frame.
    """
    p = resolve_path(path)
    try:
        read = read_events(p)
    except FileNotFoundError:
        raise ConfigError(f"deployment ledger {p} not found; pass --ledger data/deployments/ledger.jsonl "
                          "(written by `hardening deploy`)") from None
    for warning in read.warnings:
        warnings.warn(warning, RecordWarning, stacklevel=2)
    latest = {str(e["id"]): e for e in read.events}
    df = pd.DataFrame(list(latest.values()))
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    for col in TIME_COLUMNS:
        df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", format="ISO8601")
    df = df.sort_values(["started_at", "id"], kind="stable").reset_index(drop=True)
    df["is_rollback"] = df["rollback_of"].notna()
    df.attrs["warnings"] = list(read.warnings)
    df.attrs["skipped"] = len(read.warnings)
    return df


@dataclass
class DoraMetrics:
    env: str | None
    service: str | None
    deployments: int
    changes: int
    rollbacks: int
    failed_changes: int
    days: float
    deploys_per_day: float | None
    deploys_per_week: float | None
    change_failure_rate: float | None
    rollback_rate: float | None
    time_to_detect_s_median: float | None
    time_to_detect_s_p90: float | None
    time_to_rollback_s_median: float | None
    time_to_restore_s_median: float | None
    time_to_restore_s_p90: float | None
    lead_time_s_median: float | None
    lead_time_s_p90: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _q(series: pd.Series, q: float) -> float | None:
    s = series.dropna()
    return None if s.empty else float(s.quantile(q))


def select(ledger: pd.DataFrame, env: str | None = None, service: str | None = None) -> pd.DataFrame:
    mask = pd.Series(True, index=ledger.index)
    if env:
        mask &= ledger["env"] == env
    if service:
        mask &= ledger["service"] == service
    return ledger[mask].reset_index(drop=True)


def environment_or_all(ledger: pd.DataFrame, env: str | None) -> tuple[str | None, str | None]:
    """``env`` when the ledger has deployments there; else None (all environments) and a note saying so.

    A staging-only ledger (CI on a branch) would otherwise give an empty production report."""
    if not env or ledger.empty or (ledger["env"] == env).any():
        return env, None
    found = ", ".join(sorted(ledger["env"].dropna().astype(str).unique()))
    return None, f"No deployments to {env!r} in this ledger (it has: {found}); the figures cover all environments."


def recovery_times(ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per bad change: detect, roll back and restore durations in seconds (NaN when unknown)."""
    rollbacks = ledger[ledger["is_rollback"]].set_index("rollback_of")
    rows = []
    for _, dep in ledger[(~ledger["is_rollback"]) & ledger["status"].isin(BAD)].iterrows():
        detect = (dep["finished_at"] - dep["started_at"]).total_seconds() if pd.notna(dep["finished_at"]) else None
        rb_end = None
        if dep["id"] in rollbacks.index:
            rb = rollbacks.loc[[dep["id"]]]
            green = rb[rb["status"] == "green"]
            rb_end = (green if not green.empty else rb)["finished_at"].min()
        to_rb = (rb_end - dep["finished_at"]).total_seconds() if pd.notna(rb_end) and pd.notna(
            dep["finished_at"]) else None
        restore = (rb_end - dep["started_at"]).total_seconds() if pd.notna(rb_end) else None
        rows.append({"id": dep["id"], "version": dep["version"], "status": dep["status"],
                     "started_at": dep["started_at"], "time_to_detect_s": detect,
                     "time_to_rollback_s": to_rb, "time_to_restore_s": restore})
    return pd.DataFrame(rows, columns=["id", "version", "status", "started_at", "time_to_detect_s",
                                       "time_to_rollback_s", "time_to_restore_s"], dtype=object).astype(
        {"time_to_detect_s": float, "time_to_rollback_s": float, "time_to_restore_s": float})


def dora_metrics(ledger: pd.DataFrame, env: str | None = "production", service: str | None = None) -> DoraMetrics:
    """DORA-style metrics for one environment (and service) of the ledger; see module docstring."""
    d = select(ledger, env, service)
    finished = d[d["status"] != "in_progress"]
    changes = finished[~finished["is_rollback"]]
    rollbacks = finished[finished["is_rollback"]]
    failed = changes[changes["status"].isin(BAD)]
    span = (d["started_at"].max() - d["started_at"].min()).total_seconds() / 86400 if len(d) > 1 else 0.0
    days = max(span, 1.0) if len(d) else 0.0
    per_day = len(finished) / days if days else None
    rec = recovery_times(d)
    green = changes[changes["status"] == "green"]
    lead = (green["finished_at"] - green["commit_time"]).dt.total_seconds()
    return DoraMetrics(
        env=env, service=service, deployments=len(finished), changes=len(changes), rollbacks=len(rollbacks),
        failed_changes=len(failed), days=round(days, 3),
        deploys_per_day=per_day, deploys_per_week=None if per_day is None else per_day * 7,
        change_failure_rate=len(failed) / len(changes) if len(changes) else None,
        rollback_rate=len(rollbacks) / len(changes) if len(changes) else None,
        time_to_detect_s_median=_q(rec["time_to_detect_s"], 0.5),
        time_to_detect_s_p90=_q(rec["time_to_detect_s"], 0.9),
        time_to_rollback_s_median=_q(rec["time_to_rollback_s"], 0.5),
        time_to_restore_s_median=_q(rec["time_to_restore_s"], 0.5),
        time_to_restore_s_p90=_q(rec["time_to_restore_s"], 0.9),
        lead_time_s_median=_q(lead, 0.5), lead_time_s_p90=_q(lead, 0.9),
    )
