"""The Redis report (``notebooks/redis_report.ipynb``): what Redis did while k6 loaded the service.

Everything it states comes from the comparison ``hardening.redisobs`` wrote into the run record
(``RunLayout(run).redis.comparison``): before/after/delta with the tool's own commands excluded, per-command
µs/call, latency events, the (redacted) slowlog, recommendations, and whether counters were reset (restart or
``CONFIG RESETSTAT``) during the window. The sampler's timeline is drawn under k6's requests/s and p95.

When the comparison file is absent but both snapshots are there, the comparison is computed now by
:func:`hardening.redisobs.compare.compare`, the one implementation, and the report says so. When it cannot
be had, the report says plainly that there is no comparison; it never estimates one by itself.

:class:`RedisReport` is the view model the notebook calls; :class:`RedisReportSummary` is its side file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
from IPython.display import HTML

from hardening.analysis import units
from hardening.record.layout import RedisLayout, RunLayout
from hardening.record.reader import RecordWarning, RunData, latest_run_dir, load_run
from hardening.redisobs.compare import compare
from hardening.redisobs.sampler import read_timeline as read_timeline_rows
from hardening.reports import charts
from hardening.reports.run_report import verdict_banner
from hardening.reports.style import BLUE, ORANGE, PURPLE, Summary, join, note, number, per_second, size, table

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

NAME, TITLE = "redis_report", "Redis report"

TIMELINE_SERIES = (
    ("ops_per_sec", "ops/s"), ("instantaneous_ops_per_sec", "ops/s (INFO)"), ("connected_clients", "clients"),
    ("blocked_clients", "blocked"), ("used_memory", "memory bytes"), ("mem_fragmentation_ratio", "fragmentation"),
    ("hit_ratio", "hit ratio"),
)
COMMAND_COLUMNS = ["command", "calls", "usec_per_call", "share_of_time", "p50_us_le", "p99_us_le", "failed_calls"]
EVENT_COLUMNS = ["event", "node", "samples_in_window", "peak_ms", "peak_time", "all_time_max_ms"]
SLOWLOG_COLUMNS = ["id", "duration_us", "command", "args", "time", "node"]
RECOMMENDATION_COLUMNS = ["severity", "title", "detail", "rule", "threshold"]

FROM_FILE, COMPUTED, NONE = "file", "computed", "none"


# ---------------------------------------------------------------- reading the run's Redis folder


@dataclass
class RedisData:
    """A run's Redis observation: snapshots, comparison (``source`` says where it came from), timeline."""

    layout: RedisLayout
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    source: str = NONE  # FROM_FILE | COMPUTED | NONE
    timeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: list[str] = field(default_factory=list)
    problem: str = ""  # why a comparison could not be computed

    @property
    def present(self) -> bool:
        return bool(self.before or self.after or self.comparison or not self.timeline.empty)

    @property
    def aggregate(self) -> dict[str, Any]:
        """The comparison's aggregate over all nodes (empty without a comparison)."""
        agg = self.comparison.get("aggregate")
        return agg if isinstance(agg, dict) else {}

    @property
    def reset(self) -> bool:
        return bool((self.aggregate.get("reset") or {}).get("detected"))


def _json(path: Path, missing: list[str]) -> dict[str, Any]:
    if not path.is_file():
        missing.append(path.name)
        return {}
    try:
        data = orjson.loads(path.read_bytes())
        return data if isinstance(data, dict) else {}
    except ValueError as exc:
        warnings.warn(f"{path}: unreadable ({exc}); shown as missing", RecordWarning, stacklevel=2)
        missing.append(path.name)
        return {}


def read_comparison(files: RedisLayout) -> dict[str, Any] | None:
    """The comparison ``hardening.redisobs`` wrote, or None when absent or unreadable."""
    missing: list[str] = []
    data = _json(files.comparison, missing)
    return data or None


def timeline_frame(files: RedisLayout) -> pd.DataFrame:
    """The sampler's timeline as a flat DataFrame with a UTC ``time`` column (empty when absent)."""
    rows = [r for r in read_timeline_rows(files.timeline) if isinstance(r, dict) and "t" in r]
    if not rows:
        return pd.DataFrame()
    df = pd.json_normalize(rows, sep=".")
    df["time"] = pd.to_datetime(df["t"], unit="s", utc=True)
    for col, _ in TIMELINE_SERIES:  # promote nested fields (e.g. "gauges.connected_clients") to short names
        if col not in df:
            nested = [c for c in df.columns if c.endswith("." + col)]
            if nested:
                df[col] = df[nested[0]]
    return df.sort_values("time").reset_index(drop=True)


def load_redis(run: RunLayout) -> RedisData:
    """The Redis part of a run record; absent parts are empty and named in ``missing``, never an exception."""
    files = run.redis
    if not files.folder.is_dir():
        return RedisData(layout=files, missing=[f"{files.folder.name}/"])
    missing: list[str] = []
    data = RedisData(layout=files, before=_json(files.before, missing), after=_json(files.after, missing),
                     missing=missing)
    comparison = _json(files.comparison, missing)
    if comparison:
        data.comparison, data.source = comparison, FROM_FILE
    elif data.before and data.after:
        try:
            data.comparison = compare(data.before, data.after, read_timeline_rows(files.timeline))
            data.source = COMPUTED
        except Exception as exc:  # snapshots too incomplete to compare: say so, estimate nothing
            data.problem = f"{type(exc).__name__}: {exc}"
    data.timeline = timeline_frame(files)
    if data.timeline.empty:
        missing.append(files.timeline.name)
    return data


def _rel(path: Path, layout: RedisLayout) -> str:
    return f"{layout.folder.name}/{path.name}"


# ---------------------------------------------------------------- tables (from the comparison only)


def before_after(data: RedisData) -> pd.DataFrame:
    """Before / after / delta per gauge and counter (tool commands excluded), then window ops/s and hit ratio."""
    agg = data.aggregate
    rows = [{"metric": name, "before": v.get("before"), "after": v.get("after"), "delta": v.get("delta")}
            for part in ("gauges", "counters") for name, v in (agg.get(part) or {}).items() if isinstance(v, dict)]
    if agg.get("ops_per_sec") is not None:
        rows.append({"metric": "ops_per_sec (window average, app only)", "before": None, "after": None,
                     "delta": agg["ops_per_sec"]})
    if agg.get("hit_ratio_window") is not None:
        rows.append({"metric": "hit_ratio (window)", "before": agg.get("hit_ratio_before"), "after": None,
                     "delta": agg["hit_ratio_window"]})
    return pd.DataFrame(rows, columns=["metric", "before", "after", "delta"])


BYTES = ("memory", "bytes")  # a before/after metric whose name has one of these is a size


def _redis_value(metric: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if metric.startswith("hit_ratio"):
        return units.pct(value)
    if metric.startswith("ops_per_sec"):
        return per_second(value, " ops/s")
    if any(b in metric for b in BYTES) and "ratio" not in metric:
        return size(value)
    return number(value)


def before_after_shown(data: RedisData) -> pd.DataFrame:
    """:func:`before_after` with units: sizes in KiB/MiB, hit ratios in %, ops/s."""
    frame = before_after(data)
    for col in ("before", "after", "delta"):
        frame[col] = [_redis_value(str(m), v) for m, v in zip(frame["metric"], frame[col], strict=True)]
    return frame


COMMAND_UNITS = {"calls": "count", "usec_per_call": "µs", "share_of_time": "%", "p50_us_le": "≤µs",
                 "p99_us_le": "≤µs", "failed_calls": "count"}
EVENT_UNITS = {"samples_in_window": "count", "peak_ms": "ms", "all_time_max_ms": "ms"}
SLOWLOG_UNITS = {"duration_us": "µs", "args": "count"}


def command_latency(data: RedisData) -> pd.DataFrame:
    """Per-command calls and µs/call in the window (Δusec / Δcalls), percentiles from histogram deltas."""
    per_command = data.aggregate.get("per_command")
    df = pd.DataFrame([r for r in per_command if isinstance(r, dict)] if isinstance(per_command, list) else [])
    return df.reindex(columns=[c for c in COMMAND_COLUMNS if c in df.columns] or COMMAND_COLUMNS)


def latency_events(data: RedisData) -> pd.DataFrame:
    return pd.DataFrame(data.aggregate.get("latency_events") or [], columns=EVENT_COLUMNS)


def _time(value: Any) -> pd.Timestamp | None:
    return pd.to_datetime(value, unit="s", utc=True) if isinstance(value, int | float) else None


def slowlog(data: RedisData) -> pd.DataFrame:
    """Slowlog entries new in the window (redacted by the collector), slowest first."""
    log = data.aggregate.get("slowlog")
    top = (log.get("top") or []) if isinstance(log, dict) else []
    rows = [{"id": e.get("id"), "duration_us": e.get("duration_us"), "command": e.get("command"),
             "args": e.get("arg_count"), "time": _time(e.get("time")), "node": e.get("node")} for e in top]
    return pd.DataFrame(rows, columns=SLOWLOG_COLUMNS)


def slowlog_facts(data: RedisData) -> str:
    log = data.aggregate.get("slowlog")
    if not isinstance(log, dict):
        return "Slowlog: not read in this run." if data.comparison else "Slowlog: no comparison, nothing to show."
    return (f"Slowlog: {log.get('new_entries', 0)} new entries in the window, {log.get('lost_entries', 0)} lost"
            f"{' (at least)' if log.get('lost_is_lower_bound') else ''}; {log.get('tool_entries_excluded', 0)} "
            "entries of the tool itself excluded; arguments are redacted.")


def recommendations(data: RedisData) -> pd.DataFrame:
    rows = []
    for r in data.comparison.get("recommendations") or []:
        if isinstance(r, dict):
            rows.append({k: r.get(k) for k in RECOMMENDATION_COLUMNS})
        else:
            rows.append({"severity": None, "title": str(r), "detail": None, "rule": None, "threshold": None})
    return pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)


def server_label(data: RedisData) -> str:
    server = data.comparison.get("server") or data.after.get("server") or data.before.get("server") or {}
    if not isinstance(server, dict):
        return str(server)
    name = server.get("kind") or server.get("name") or "Redis"
    version = server.get("version") or server.get("redis_version") or "?"
    mode = data.comparison.get("mode") or data.after.get("mode") or data.before.get("mode") or "standalone"
    return f"{name} {version} ({mode})"


def status_notes(data: RedisData) -> list[str]:
    """What the reader must know before the tables: no data, no comparison, computed comparison, resets."""
    files = data.layout
    if not data.present:
        return [f"No Redis data in this run record (no {files.folder.name}/ folder): Redis was not observed "
                "during this run."]
    notes = [f"Redis: {server_label(data)}"]
    if data.source == NONE:
        notes.append(f"No Redis comparison in this run record: {_rel(files.comparison, files)} is missing"
                     + (f" and the snapshots could not be compared ({data.problem})" if data.problem else
                        " and so is a before or after snapshot")
                     + ". There are no before/after deltas, per-command latency, slowlog or recommendations; "
                     "the timeline is shown as sampled.")
    elif data.source == COMPUTED:
        notes.append(f"{_rel(files.comparison, files)} is missing: the comparison below was computed now from "
                     f"{_rel(files.before, files)} and {_rel(files.after, files)} by hardening.redisobs.compare.")
    if data.reset:
        reasons = "; ".join((data.aggregate.get("reset") or {}).get("reasons") or [])
        notes.append("Counters were reset during the window (server restart or CONFIG RESETSTAT): deltas count "
                     f"only what accumulated since the reset and are lower bounds ({reasons}).")
    errors = [e for e in data.comparison.get("errors") or [] if isinstance(e, str)]
    if errors:
        notes.append("Observation errors: " + "; ".join(errors))
    return notes


# ---------------------------------------------------------------- figures


def timeline_figure(per_second: pd.DataFrame, timeline: pd.DataFrame,
                    series: tuple[tuple[str, str], ...] = TIMELINE_SERIES) -> plt.Figure:
    """k6 requests/s and p95 above the Redis timeline series, all on the same UTC time axis."""
    present = [(c, lab) for c, lab in series if c in timeline and timeline[c].notna().any()]
    if timeline.empty or not present:
        return charts.message("No Redis timeline in this run record.")
    k6 = per_second[per_second["scenario"] == "all"] if not per_second.empty else per_second
    n = 2 + len(present)
    fig, axes = charts.subplots(n, 1, figsize=(charts.WIDTH, 1.8 * n + 0.6), sharex=True)
    if not k6.empty:
        t = pd.to_datetime(k6["second"], utc=True)
        charts.line(axes[0], t, k6["rps"], color=BLUE)
        charts.line(axes[1], t, k6["p95_ms"], color=ORANGE)
    axes[0].set_ylabel("k6 req/s", fontsize=10)
    axes[1].set_ylabel("k6 p95 ms", fontsize=10)
    for ax, (col, lab) in zip(axes[2:], present, strict=True):
        charts.line(ax, timeline["time"], timeline[col], color=PURPLE)
        ax.set_ylabel(charts.label(lab), fontsize=10)
    for ax in axes:
        ax.grid(alpha=0.3)
    charts.time_axis(axes[-1])
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- side file and view model


@dataclass
class RedisReportSummary(Summary):
    run_id: str
    redis_present: bool
    comparison: str  # "file" (written by the observation), "computed" (from the snapshots) or "none"
    missing: list[str]
    server: str | None = None
    reset: bool = False
    before_after: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    slowlog_entries: int = 0
    latency_events: int = 0
    timeline_rows: int = 0
    recommendations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RedisReport:
    """One run's Redis observation; each method is one section of the notebook."""

    run: RunData
    redis: RedisData

    @classmethod
    def load(cls, run_dir: str = "", history_dir: str = "") -> RedisReport:
        run = load_run(run_dir or latest_run_dir(history_dir))
        return cls(run, load_redis(run.layout))

    def header(self) -> HTML:
        """The run's verdict, then what the reader must know about the Redis data."""
        return join(verdict_banner(self.run.record), *(note(n) for n in status_notes(self.redis)))

    def before_after_table(self) -> HTML:
        return table(before_after_shown(self.redis), "Connections, commands, memory")

    def timeline_figure(self) -> plt.Figure:
        return timeline_figure(self.run.per_second, self.redis.timeline)

    def commands_table(self) -> HTML:
        return table(command_latency(self.redis), "Commands (Δusec / Δcalls)", units=COMMAND_UNITS)

    def commands_figure(self) -> plt.Figure:
        return charts.bar(command_latency(self.redis), "command", "usec_per_call", "µs per call", "µs")

    def events_section(self) -> HTML:
        return join(table(latency_events(self.redis), "Latency events (LATENCY LATEST)", units=EVENT_UNITS),
                    note(slowlog_facts(self.redis)),
                    table(slowlog(self.redis), "Slowest new slowlog entries (arguments redacted)",
                          units=SLOWLOG_UNITS))

    def recommendations_section(self) -> HTML:
        recs = recommendations(self.redis)
        if len(recs):
            return table(recs, "Recommendations")
        if not self.redis.present:
            return note("No Redis data.")
        if self.redis.source == NONE:
            return note("No comparison, so no recommendation.")
        return note("No issues detected: no recommendation.")

    def summary(self) -> RedisReportSummary:
        data = self.redis
        return RedisReportSummary(
            run_id=self.run.run_id, redis_present=data.present, comparison=data.source, missing=data.missing,
            server=server_label(data) if data.present else None, reset=data.reset,
            before_after=before_after(data).to_dict("records"), commands=command_latency(data).to_dict("records"),
            slowlog_entries=len(slowlog(data)), latency_events=len(latency_events(data)),
            timeline_rows=len(data.timeline), recommendations=recommendations(data).to_dict("records"))
