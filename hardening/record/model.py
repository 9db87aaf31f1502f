"""The run record (``RunLayout.run_json``) as typed data: one model for every producer and every reader.

Dataclasses, not pydantic: every record is written by this package's own writer, so validation is
needed only at the edge (reading a file from disk), where :meth:`RunRecord.from_dict` checks the
schema version and the fields that readers rely on. Dataclasses keep that small, add no dependency,
and keep ``load_runs`` fast (10,000 records in well under a second with orjson).

Schema versions:
- 1: key metrics held the demo script's custom metric names at the top
  level of ``metrics``; ``redis`` was sometimes the flat summary.
- 2: ``metrics`` holds k6's built-in key figures; every other metric of k6's summary is in
  ``metrics.custom`` as ``{name: {"type": trend|counter|rate|gauge, "values": {...}}}``; ``redis`` is
  ``{"server", "url", "summary"}``. Version 1 records are migrated on read.
  Optional ``instances`` (a ``--instances N`` run, N > 1): one :class:`InstanceSummary` per k6 instance;
  absent otherwise (a reader that does not know it loses nothing: the run's figures are in ``metrics``).
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hardening.errors import ConfigError
from hardening.record.layout import RunLayout

SCHEMA_VERSION = 2

TREND, COUNTER, RATE, GAUGE = "trend", "counter", "rate", "gauge"

# k6's own metrics and their types; any other metric is the script's own (custom).
BUILTIN_METRICS: dict[str, str] = {
    "http_reqs": COUNTER,
    "http_req_failed": RATE,
    "http_req_duration": TREND,
    "http_req_blocked": TREND,
    "http_req_connecting": TREND,
    "http_req_tls_handshaking": TREND,
    "http_req_sending": TREND,
    "http_req_waiting": TREND,
    "http_req_receiving": TREND,
    "iteration_duration": TREND,
    "iterations": COUNTER,
    "vus": GAUGE,
    "vus_max": GAUGE,
    "checks": RATE,
    "data_sent": COUNTER,
    "data_received": COUNTER,
    "dropped_iterations": COUNTER,
    "group_duration": TREND,
    "ws_sessions": COUNTER,
    "ws_msgs_sent": COUNTER,
    "ws_msgs_received": COUNTER,
    "ws_ping": TREND,
    "ws_session_duration": TREND,
    "ws_connecting": TREND,
    "grpc_req_duration": TREND,
}

# The built-ins that the key figures are made of.
BUILTIN_KEY_METRICS = ("http_reqs", "http_req_failed", "checks", "http_req_duration", "iterations", "vus_max")


class RunStatus(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class SloStatus(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no_data"


class SloOrigin(enum.StrEnum):
    """Where a threshold that decides the run comes from."""

    SLO_FILE = "slo-file"
    SCRIPT = "script"


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class SloResult:
    """The verdict on one objective; ``margin`` > 0 means room left."""

    name: str
    metric: str
    expression: str
    aggregation: str
    op: str
    target: float
    observed: float | None
    margin: float | None
    status: SloStatus
    k6_failed: bool | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metric_type: str = TREND
    detail: str = ""
    origin: SloOrigin = SloOrigin.SLO_FILE

    def __post_init__(self) -> None:
        self.status = SloStatus(self.status)
        self.origin = SloOrigin(self.origin)

    @property
    def ok(self) -> bool:
        return self.status == SloStatus.PASS

    @property
    def key(self) -> str:
        """``metric{tag:value,...}`` as k6 names a sub-metric."""
        inner = ",".join(f"{k}:{v}" for k, v in self.tags.items())
        return f"{self.metric}{{{inner}}}" if inner else self.metric

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"], out["origin"] = str(self.status), str(self.origin)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SloResult:
        return cls(**_known(cls, data))


@dataclass
class GitInfo:
    commit: str | None = None
    branch: str | None = None
    actor: str | None = None


@dataclass
class K6Info:
    version: str | None = None
    exit_code: int | None = None
    exit_meaning: str | None = None


@dataclass
class CustomMetric:
    """A metric of k6's summary that is not one of the key built-ins: its type and k6's values."""

    type: str
    values: dict[str, float]


@dataclass
class KeyMetrics:
    """The numbers history and the console need, from k6's own summary; custom metrics by name."""

    requests: int = 0
    rps: float = 0.0
    error_rate: float | None = None
    checks_rate: float | None = None
    iterations: int = 0
    vus_max: float | None = None
    http_req_duration: dict[str, float] | None = None
    custom: dict[str, CustomMetric] = field(default_factory=dict)  # the script's own metrics
    builtin: dict[str, CustomMetric] = field(default_factory=dict)  # k6's other built-ins (http_req_waiting, ...)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyMetrics:
        def typed(key: str) -> dict[str, CustomMetric]:
            return {name: CustomMetric(**m) for name, m in (data.get(key) or {}).items()}

        return cls(**{**_known(cls, data), "custom": typed("custom"), "builtin": typed("builtin")})

    def trends(self) -> dict[str, dict[str, float]]:
        """Every Trend's stats by metric name, ``http_req_duration`` first."""
        out = {"http_req_duration": self.http_req_duration} if self.http_req_duration else {}
        out.update({n: m.values for n, m in self.custom.items() if m.type == TREND})
        return out

    def of_type(self, kind: str) -> dict[str, dict[str, float]]:
        return {n: m.values for n, m in self.custom.items() if m.type == kind}


@dataclass
class InstanceSummary:
    """One k6 instance of a ``--instances N`` run, from k6's own summary of its execution segment.

    These are that instance's figures, never an average: the run's own figures (``RunRecord.metrics``, the
    SLO results) are computed from every instance's samples together."""

    instance: int  # 1-based: the value of the samples' ``instance`` tag
    segment: str  # k6's --execution-segment, e.g. "1/3:2/3"
    exit_code: int | None = None
    exit_meaning: str | None = None
    requests: int = 0
    rps: float = 0.0
    p95_ms: float | None = None
    error_rate: float | None = None
    iterations: int = 0
    thresholds_crossed: list[str] = field(default_factory=list)  # "key expr" k6 said failed on this segment
    summary: str | None = None  # path of its k6 summary inside the record, e.g. k6/instance-1/summary.json

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceSummary:
        return cls(**_known(cls, data))


@dataclass
class RunRecord:
    """The run record (``RunLayout.run_json``). Fields: README, "The run record"; docs/architecture.md."""

    run_id: str
    status: RunStatus
    started_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    planned_duration_s: float | None = None
    environment: str | None = None
    profile: str | None = None
    script: str | None = None
    script_sha256: str | None = None
    target: str | None = None
    git: GitInfo = field(default_factory=GitInfo)
    k6: K6Info = field(default_factory=K6Info)
    slo: dict[str, Any] = field(default_factory=dict)
    slo_results: list[SloResult] = field(default_factory=list)
    slo_results_from_samples: list[SloResult] | None = None
    metrics: KeyMetrics = field(default_factory=KeyMetrics)
    redis: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    instances: list[InstanceSummary] | None = None  # --instances N > 1: each k6 instance's own figures
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)

    @property
    def failed_slos(self) -> list[SloResult]:
        return [r for r in self.slo_results if r.status != SloStatus.PASS]

    @property
    def redis_summary(self) -> dict[str, Any]:
        return (self.redis or {}).get("summary") or {}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        out["slo_results"] = [r.to_dict() for r in self.slo_results]
        if self.slo_results_from_samples is not None:
            out["slo_results_from_samples"] = [r.to_dict() for r in self.slo_results_from_samples]
        if self.instances is None:  # a one-instance record stays exactly as before
            out.pop("instances")
        return {"schema_version": out.pop("schema_version"), "run_id": out.pop("run_id"), **out}

    @classmethod
    def from_dict(cls, data: Any, where: str = RunLayout.RUN_JSON) -> RunRecord:
        """Validate and migrate a parsed record; ConfigError (exit 2) naming what is wrong."""
        if not isinstance(data, dict) or not data.get("run_id"):
            raise ConfigError(f"{where} is not a run record (no run_id)")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ConfigError(f"{where} has schema_version {version!r}, newer than this hardening reads "
                              f"({SCHEMA_VERSION}): upgrade hardening (pip install -U hardening)")
        if version < SCHEMA_VERSION:
            data = migrate(data)
        try:
            status = RunStatus(data.get("status"))
        except ValueError:
            raise ConfigError(f"{where}: unknown status {data.get('status')!r} "
                              f"(expected one of {', '.join(s.value for s in RunStatus)})") from None
        try:
            samples = data.get("slo_results_from_samples")
            instances = data.get("instances")
            return cls(**{
                **_known(cls, data),
                "status": status,
                "git": GitInfo(**_known(GitInfo, data.get("git") or {})),
                "k6": K6Info(**_known(K6Info, data.get("k6") or {})),
                "slo": data.get("slo") or {},
                "slo_results": [SloResult.from_dict(r) for r in data.get("slo_results") or []],
                "slo_results_from_samples": None if samples is None else [SloResult.from_dict(r) for r in samples],
                "metrics": KeyMetrics.from_dict(data.get("metrics") or {}),
                "warnings": list(data.get("warnings") or []),
                "files": list(data.get("files") or []),
                "instances": None if instances is None else [InstanceSummary.from_dict(i) for i in instances],
                "schema_version": SCHEMA_VERSION,
            })
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{where} is not a valid run record: {exc}") from None


def infer_type(values: dict[str, Any]) -> str:
    """A metric's k6 type from the keys of its ``--summary-export`` values."""
    keys = set(values)
    if {"passes", "fails"} & keys:
        return RATE
    if "count" in keys and "rate" in keys and not {"avg", "med"} & keys:
        return COUNTER
    if {"avg", "med"} & keys or any(k.startswith("p(") for k in keys):
        return TREND
    if "value" in keys:
        return GAUGE
    return COUNTER if "count" in keys else GAUGE


def key_metrics(summary: dict[str, Any], types: dict[str, str] | None = None) -> KeyMetrics:
    """The key figures of a k6 summary (``--summary-export`` shape); every non-key metric as custom.

    ``types`` (metric name -> k6 type, e.g. from the raw output's Metric lines) wins over inference.
    Sub-metrics (``name{tag:value}``) are left out: they are SLO results, not key figures.
    """
    metrics = summary.get("metrics") or {}
    types = types or {}

    def values(name: str) -> dict[str, Any]:
        return {k: v for k, v in (metrics.get(name) or {}).items() if k != "thresholds"}

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

    reqs, vus = values("http_reqs"), values("vus_max")
    custom, builtin = {}, {}
    for name in metrics:
        if name in BUILTIN_KEY_METRICS or "{" in name:
            continue
        vals = {k: float(v) for k, v in values(name).items() if num(v) is not None}
        kind = BUILTIN_METRICS.get(name) or types.get(name) or infer_type(vals)
        (builtin if name in BUILTIN_METRICS else custom)[name] = CustomMetric(type=kind, values=vals)
    return KeyMetrics(
        requests=int(reqs.get("count", 0)),
        rps=float(reqs.get("rate", 0.0)),
        error_rate=num(values("http_req_failed").get("value")),
        checks_rate=num(values("checks").get("value")),
        iterations=int(values("iterations").get("count", 0)),
        vus_max=num(vus.get("max", vus.get("value"))),
        http_req_duration=values("http_req_duration") or None,
        custom=custom,
        builtin=builtin,
    )


_V1_KEY_SCALARS = ("requests", "rps", "error_rate", "checks_rate", "iterations", "vus_max", "http_req_duration")


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 record in today's shape (the input is not changed)."""
    data = dict(data)
    old = dict(data.get("metrics") or {})
    custom: dict[str, Any] = {}
    for name, value in old.items():
        if name in _V1_KEY_SCALARS or name in ("custom", "builtin"):
            continue
        if isinstance(value, dict):
            custom[name] = {"type": infer_type(value), "values": value}
        elif isinstance(value, int | float):  # version 1 stored custom Counters as their count
            custom[name] = {"type": COUNTER, "values": {"count": value}}
    data["metrics"] = {**{k: old[k] for k in _V1_KEY_SCALARS if k in old}, "custom": custom}
    redis = data.get("redis")
    if isinstance(redis, dict) and "summary" not in redis:
        data["redis"] = {"server": redis.get("server"), "url": redis.get("url"), "summary": redis}
    data["schema_version"] = SCHEMA_VERSION
    return data
