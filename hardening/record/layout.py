"""Every path inside a run record, named once.

``RunLayout(run_dir)`` knows where each file of the record lives; producers and readers ask it
instead of spelling file names. The Redis observation writes the ``redis/`` folder through
:class:`RedisLayout`, which the ``hardening redis`` commands also use for their own file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RedisLayout:
    """The files of one Redis observation (before/after snapshots, sampler timeline, comparison)."""

    BEFORE = "before.json"
    AFTER = "after.json"
    TIMELINE = "timeline.jsonl"
    COMPARISON = "comparison.json"
    REPORT_MD = "redis-observability-report.md"

    before: Path
    after: Path
    timeline: Path
    comparison: Path
    report_md: Path

    @classmethod
    def in_dir(cls, folder: Path) -> RedisLayout:
        folder = Path(folder)
        return cls(before=folder / cls.BEFORE, after=folder / cls.AFTER, timeline=folder / cls.TIMELINE,
                   comparison=folder / cls.COMPARISON, report_md=folder / cls.REPORT_MD)

    @property
    def folder(self) -> Path:
        return self.before.parent


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run record folder (``data/runs/<run_id>/``, or its ``.tmp-`` twin while written)."""

    root: Path

    RUN_JSON = "run.json"
    K6_SUMMARY = "k6-summary.json"
    K6_LOG = "k6-stdout.log"
    K6_RAW = "k6-raw.json"
    SLO_RESULT_TXT = "k6-slo-result.txt"
    SAMPLES = "samples.parquet"
    PER_SECOND = "per_second.parquet"
    VERDICT = "verdict.json"
    TMP_PREFIX = ".tmp-"

    @property
    def run_json(self) -> Path:
        return self.root / self.RUN_JSON

    @property
    def k6_summary(self) -> Path:
        """k6's ``--summary-export`` (trend stats per ``--summary-trend-stats``)."""
        return self.root / self.K6_SUMMARY

    @property
    def k6_log(self) -> Path:
        return self.root / self.K6_LOG

    @property
    def k6_raw(self) -> Path:
        """k6's ``--out json`` NDJSON; kept only with ``--keep-raw``."""
        return self.root / self.K6_RAW

    @property
    def slo_file(self) -> Path:
        """The SLO file exactly as k6 used it."""
        return self.root / "slo.json"

    @property
    def slo_result_txt(self) -> Path:
        """``PASS`` or ``FAIL``: the seed's compatibility file."""
        return self.root / self.SLO_RESULT_TXT

    @property
    def samples(self) -> Path:
        return self.root / self.SAMPLES

    @property
    def per_second(self) -> Path:
        return self.root / self.PER_SECOND

    @property
    def verdict(self) -> Path:
        return self.root / self.VERDICT

    @property
    def k6_dir(self) -> Path:
        """Files made for k6 (the wrapper module) and by the script's ``handleSummary``."""
        return self.root / "k6"

    def instance_dir(self, index: int) -> Path:
        """``k6/instance-<i>/`` of a ``--instances N`` run (1-based, the samples' ``instance`` tag): that k6's
        working directory, where its ``handleSummary`` files land."""
        return self.k6_dir / f"instance-{index}"

    def instance_summary(self, index: int) -> Path:
        """k6's own ``--summary-export`` of instance ``index`` (its execution segment only)."""
        return self.instance_dir(index) / "summary.json"

    def instance_raw(self, index: int) -> Path:
        """k6's ``--out json`` NDJSON of instance ``index``; kept only with ``--keep-raw``."""
        return self.instance_dir(index) / self.K6_RAW

    def instance_log(self, index: int) -> Path:
        """k6's console output of instance ``index`` while it runs (then appended to ``k6-stdout.log``)."""
        return self.instance_dir(index) / self.K6_LOG

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def redis(self) -> RedisLayout:
        return RedisLayout.in_dir(self.redis_dir)

    @property
    def has_samples(self) -> bool:
        return self.samples.is_file()

    @classmethod
    def is_record_dir_name(cls, name: str) -> bool:
        """Run folders are never hidden; ``.tmp-<id>`` folders are records still being written (or dead)."""
        return not name.startswith(".")
