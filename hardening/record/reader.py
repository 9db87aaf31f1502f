"""The one reader of run records: ``read_record(dir)`` one typed record, ``load_run(dir)`` one run with its
data, ``load_runs(path)`` one DataFrame row per run.

A history is the set of ``<root>/<run_id>/`` records (``RunLayout.run_json``; contract: README, "The run
record"). Loading reads only that file (with orjson), so 10,000 records load in well under two seconds. A
record that cannot be read is skipped with a warning and listed in ``df.attrs["skipped"]``; it never
crashes a report.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from hardening.errors import ConfigError
from hardening.record.layout import RunLayout
from hardening.record.model import TREND, RunRecord, RunStatus, SloStatus

BASE_COLUMNS = ["run_id", "status", "started_at", "finished_at", "duration_s", "environment", "profile", "script_sha256",
                "script", "target", "commit", "branch", "actor", "k6_version", "k6_exit_code",
                "slo_total", "slo_failed", "slo_no_data", "slo_results", "redis_server", "warnings", "path"]


class RecordWarning(UserWarning):
    """A run record was skipped because it could not be read."""


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """An absolute path as is; a relative one against the working directory, else its nearest parent
    that has it.

    Notebooks default to ``data/sample/...``: this lets them run from the repository root (papermill, CI)
    and from ``notebooks/`` (JupyterLab) alike.
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    for parent in Path.cwd().parents:
        if (parent / p).exists():
            return (parent / p).resolve()
    return p.resolve()


def stat_key(stat: str) -> str:
    """k6 summary keys to column suffixes: ``p(95)`` -> ``p95``, ``p(99.9)`` -> ``p99.9``."""
    return stat.replace("(", "").replace(")", "")


def flatten_record(rec: RunRecord, path: str = "") -> dict[str, Any]:
    """One history row from a run record: fixed columns, then every Trend's stats as
    ``<metric>_<stat>`` and every custom Counter/Rate/Gauge as ``<metric>_<value>``, then ``redis.*``."""
    m = rec.metrics
    row: dict[str, Any] = {
        "run_id": rec.run_id,
        "status": str(rec.status),
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "duration_s": rec.duration_s,
        "environment": rec.environment,
        "profile": rec.profile,
        "script": rec.script,
        "script_sha256": rec.script_sha256,
        "target": rec.target,
        "commit": rec.git.commit,
        "branch": rec.git.branch,
        "actor": rec.git.actor,
        "k6_version": rec.k6.version,
        "k6_exit_code": rec.k6.exit_code,
        "slo_total": len(rec.slo_results),
        "slo_failed": sum(1 for s in rec.slo_results if s.status == SloStatus.FAIL),
        "slo_no_data": sum(1 for s in rec.slo_results if s.status == SloStatus.NO_DATA),
        "slo_results": [s.to_dict() for s in rec.slo_results],
        "redis_server": (rec.redis or {}).get("server"),
        "warnings": len(rec.warnings),
        "path": path,
        "requests": m.requests, "rps": m.rps, "error_rate": m.error_rate, "checks_rate": m.checks_rate,
        "iterations": m.iterations, "vus_max": m.vus_max,
    }
    for metric, stats in m.trends().items():
        for stat, value in stats.items():
            row[f"{metric}_{stat_key(stat)}"] = value
    for metric, custom in m.custom.items():
        if custom.type != TREND:
            for stat, value in custom.values.items():
                row[f"{metric}_{stat}"] = value
    for key, value in _flat(rec.redis_summary, "redis."):
        row[key] = value
    return row


def _flat(obj: Any, prefix: str) -> list[tuple[str, Any]]:
    """Numeric and string leaves of a nested dict as ``prefix.a.b`` pairs (lists are skipped)."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_flat(v, f"{prefix}{k}."))
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        out.append((prefix[:-1], obj))
    return out


def _scan(root: Path) -> list[Path]:
    if RunLayout(root).run_json.is_file():
        return [RunLayout(root).run_json]
    try:
        entries = [e for e in os.scandir(root) if e.is_dir() and RunLayout.is_record_dir_name(e.name)]
    except FileNotFoundError:
        raise ConfigError(f"history folder {root} does not exist; pass --history with a folder of run "
                          "records (data/runs) or run `hardening loadtest` first") from None
    return [RunLayout(Path(e.path)).run_json for e in sorted(entries, key=lambda e: e.name)]


def load_runs(path: str | os.PathLike[str] = "data/runs", environment: str | None = None,
              branch: str | None = None, script: str | None = None) -> pd.DataFrame:
    """One row per run under ``path`` (a folder of run folders, or one run folder), oldest first.

    Filters (``environment``, ``branch``, ``script``) keep only matching rows; empty/None means all.
    Unreadable records are skipped with a :class:`RecordWarning`; ``df.attrs["skipped"]`` lists them.
    """
    root = resolve_path(path)
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for run_json in _scan(root):
        try:
            rec = RunRecord.from_dict(orjson.loads(run_json.read_bytes()), run_json.name)
            rows.append(flatten_record(rec, str(run_json.parent)))
        except (OSError, ValueError, ConfigError) as exc:  # orjson.JSONDecodeError is a ValueError
            missing = isinstance(exc, FileNotFoundError)
            reason = f"missing {run_json.name}" if missing else str(exc).splitlines()[0]
            skipped.append((str(run_json.parent), reason))
            warnings.warn(f"skipped run record {run_json.parent.name}: {reason}", RecordWarning, stacklevel=2)
    df = pd.DataFrame(rows)
    for col in BASE_COLUMNS:
        if col not in df.columns:
            df[col] = pd.Series(dtype=object)
    for col in ("started_at", "finished_at"):
        df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", format="ISO8601")
    df = df.sort_values(["started_at", "run_id"], kind="stable").reset_index(drop=True)
    df = filter_runs(df, environment=environment, branch=branch, script=script)
    df.attrs["skipped"] = skipped
    return df


def filter_runs(df: pd.DataFrame, environment: str | None = None, branch: str | None = None,
                script: str | None = None) -> pd.DataFrame:
    """Rows matching every given filter (None or "" = no filter on that column)."""
    mask = pd.Series(True, index=df.index)
    for col, want in (("environment", environment), ("branch", branch), ("script", script)):
        if want:
            mask &= df[col] == want
    out = df[mask].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


def slo_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table of per-SLO results: one row per (run, SLO), oldest run first."""
    rows = []
    for run_id, started, results in zip(runs["run_id"], runs["started_at"], runs["slo_results"], strict=True):
        for s in results or []:
            rows.append({"run_id": run_id, "started_at": started, "name": s.get("name"),
                         "metric": s.get("metric"), "aggregation": s.get("aggregation"), "op": s.get("op"),
                         "target": s.get("target"), "observed": s.get("observed"), "margin": s.get("margin"),
                         "status": s.get("status")})
    cols = ["run_id", "started_at", "name", "metric", "aggregation", "op", "target", "observed", "margin",
            "status"]
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------- one run


@dataclass
class RunData:
    """Everything a report needs from one run folder; absent parts are empty, never an exception."""

    path: Path
    record: RunRecord
    per_second: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.path)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def has_samples(self) -> bool:
        return self.layout.has_samples

    @property
    def redis_dir(self) -> Path | None:
        return self.layout.redis_dir if self.layout.redis_dir.is_dir() else None

    def samples(self, metric: str | None = None) -> pd.DataFrame:
        """Raw k6 samples (empty frame when the record kept only per-second aggregates)."""
        if not self.has_samples:
            return pd.DataFrame(columns=["time", "metric", "value", "scenario"])
        from hardening.loadtest.samples import load_samples

        return load_samples(self.layout.samples, metrics=[metric] if metric else None)


def read_record(run_dir: str | os.PathLike[str]) -> RunRecord:
    """The run record of ``run_dir``; ConfigError (exit 2) naming the file when missing, corrupt, or
    written by a newer hardening. Version-1 records are migrated."""
    run_json = RunLayout(Path(run_dir)).run_json
    try:
        data = orjson.loads(run_json.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{run_json} not found: --run must name a run folder such as data/runs/<run_id>") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run_json} is not a readable run record ({exc}); rerun the load test") from None
    return RunRecord.from_dict(data, str(run_json))


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Load one run folder: its record, per-second aggregates (computed from samples if needed), summary."""
    path = resolve_path(run_dir)
    layout = RunLayout(path)
    rec = read_record(path)
    per_second = pd.DataFrame()
    if layout.per_second.is_file():
        per_second = pd.read_parquet(layout.per_second)
    elif layout.has_samples:
        from hardening.loadtest.samples import per_second as per_second_of  # the runner's own aggregation

        per_second = per_second_of(layout.samples)
    summary: dict[str, Any] = {}
    if layout.k6_summary.is_file():
        try:
            summary = orjson.loads(layout.k6_summary.read_bytes())
        except ValueError:
            warnings.warn(f"{path.name}: {layout.k6_summary.name} is unreadable; checks are not shown",
                          RecordWarning, stacklevel=2)
    return RunData(path=path, record=rec, per_second=per_second, summary=summary)


def find_baseline(history: pd.DataFrame, record: RunRecord) -> pd.Series | None:
    """The last passing run of the same environment and script that started before ``record``."""
    if history.empty:
        return None
    started = pd.to_datetime(record.started_at, utc=True, errors="coerce")
    mask = ((history["status"] == RunStatus.PASS) & (history["run_id"] != record.run_id)
            & (history["environment"] == record.environment) & (history["script"] == record.script))
    if started is not None and not pd.isna(started):
        mask &= history["started_at"] < started
    candidates = history[mask]
    return None if candidates.empty else candidates.iloc[-1]


def latest_run_dir(history_dir: str | os.PathLike[str]) -> Path:
    """The newest run folder (run ids sort by time) holding a record (``RunLayout.run_json``); ConfigError
    when there is none."""
    root = resolve_path(history_dir)
    runs = [p.parent for p in _scan(root) if p.is_file()]
    if not runs:
        raise ConfigError(f"no run records under {root}: run `hardening loadtest` or pass run_dir explicitly")
    return runs[-1]
