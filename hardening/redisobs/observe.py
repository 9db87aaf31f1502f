"""``observe()``: everything around a load test, never raising because Redis is down or goes away.

    with observe(url, out_dir, interval=1.0) as obs:   # before snapshot, sampler started
        ...                                            # the load test
    obs.summary                                        # small dict for the run record's "redis" field

Files: a :class:`hardening.record.layout.RedisLayout` (the run record's ``redis/`` folder), or a folder
given as a path, which gets the same layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardening import atomic
from hardening.masking import mask, mask_obj, mask_url
from hardening.record.layout import RedisLayout
from hardening.redisobs.compare import compare
from hardening.redisobs.report_md import render
from hardening.redisobs.sampler import Sampler, read_timeline
from hardening.redisobs.snapshot import Collector


def write_json(path: Path, obj: Any) -> None:
    """Masked JSON, written atomically."""
    atomic.write_json(path, mask_obj(obj))


def write_text(path: Path, text: str) -> None:
    """Masked text, written atomically."""
    atomic.write_text(path, mask(text))


def summarize(comparison: dict[str, Any]) -> dict[str, Any]:
    """The small JSON-able summary that goes into the run record (``RunLayout.run_json``)."""
    agg = comparison.get("aggregate") or {}
    server = comparison.get("server") or {}
    timeline = comparison.get("timeline") or {}
    recs = comparison.get("recommendations", [])
    out: dict[str, Any] = {
        "server": f"{server.get('kind', '?')} {server.get('version', '?')}" if server else None,
        "url": comparison.get("url"), "mode": comparison.get("mode"), "nodes": len(comparison.get("nodes", [])),
        "window_s": (agg.get("window") or {}).get("seconds"),
        "ops_per_sec": round(agg["ops_per_sec"], 2) if agg.get("ops_per_sec") is not None else None,
        "app_commands": agg.get("app_commands"), "tool_commands": agg.get("tool_commands"),
        "top_commands": [
            {k: r.get(k) for k in ("command", "calls", "usec_per_call", "p50_us_le", "p99_us_le")}
            for r in agg.get("per_command", []) if not r["includes_tool_time"]][:5],
        "evictions": (agg.get("counters", {}).get("evicted_keys") or {}).get("delta"),
        "error_replies": (agg.get("counters", {}).get("total_error_replies") or {}).get("delta"),
        "hit_ratio_window": agg.get("hit_ratio_window"),
        "reset": (agg.get("reset") or {}).get("detected", False),
        "latency_events": len(agg.get("latency_events", [])),
        "slowlog_new": (agg.get("slowlog") or {}).get("new_entries"),
        "slowlog_lost": (agg.get("slowlog") or {}).get("lost_entries"),
        "recommendations": len(recs),
        "warnings": sum(1 for r in recs if r["severity"] == "warning"),
        "samples": timeline.get("samples", 0),
        "gaps": len(timeline.get("gaps", [])),
        "gap_seconds": round(sum(g["seconds"] for g in timeline.get("gaps", [])), 3),
    }
    errors = [*comparison.get("errors", []), *([agg["error"]] if "error" in agg else [])]
    if errors:
        out["error"] = mask("; ".join(dict.fromkeys(errors)))  # before and after may fail alike
    return out


class Observation:
    def __init__(self, url: str, files: RedisLayout | Path | str, interval: float = 1.0,
                 include_args: bool = False, max_duration: float | None = None, timeout: float = 2.0) -> None:
        self.url = url
        self.files = files if isinstance(files, RedisLayout) else RedisLayout.in_dir(Path(files))
        self.interval = interval
        self.max_duration = max_duration
        self.collector = Collector(url, timeout=timeout, include_args=include_args)
        self.sampler: Sampler | None = None
        self.before: dict[str, Any] | None = None
        self.summary: dict[str, Any] = {"url": mask_url(url), "error": "observation not finished"}

    def __enter__(self) -> Observation:
        try:
            self.files.folder.mkdir(parents=True, exist_ok=True)
            self.before = self.collector.snapshot()
            write_json(self.files.before, self.before)
            nodes = self.collector.node_urls or self.collector.seeds
            self.sampler = Sampler(nodes, self.files.timeline, self.interval, self.max_duration)
            self.sampler.start()
        except Exception as exc:
            self.summary["error"] = mask(f"redis observation could not start: {type(exc).__name__}: {exc}")
        return self

    def __exit__(self, *exc_info: object) -> bool:
        try:
            self.finish()
        except Exception as exc:
            self.summary = {"url": mask_url(self.url),
                            "error": mask(f"redis observation failed: {type(exc).__name__}: {exc}")}
        finally:
            self.collector.close()
        return False

    def finish(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        after = self.collector.snapshot()
        write_json(self.files.after, after)
        timeline = read_timeline(self.files.timeline)
        comparison = compare(self.before or {"nodes": [], "error": "no before snapshot"}, after, timeline)
        if self.sampler is not None and self.sampler.error:
            comparison["errors"].append(self.sampler.error)
        write_json(self.files.comparison, comparison)
        write_text(self.files.report_md, render(comparison))
        self.summary = summarize(comparison)


def observe(url: str, files: RedisLayout | Path | str, interval: float = 1.0, include_args: bool = False,
             max_duration: float | None = None) -> Observation:
    return Observation(url, files, interval=interval, include_args=include_args, max_duration=max_duration)
