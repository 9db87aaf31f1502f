"""One evaluation of a finished k6 run, for ``hardening loadtest`` and ``hardening import`` alike.

Metric types come from k6's own output (the raw output's Metric lines win over the summary's shape);
every objective is judged on k6's summary and again on the raw samples, and a disagreement is a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hardening.loadtest.samples import load_samples
from hardening.loadtest.slo import SloSpec, evaluate_samples, evaluate_summary
from hardening.record.model import SloResult, infer_type


@dataclass
class Evaluation:
    slo_results: list[SloResult]
    samples_results: list[SloResult] | None
    types: dict[str, str]  # metric name -> k6 type, for the record's key metrics
    warnings: list[str] = field(default_factory=list)


def metric_types(summary: Mapping[str, Any], from_output: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each metric's k6 type: inferred from the summary's shape, overridden by k6's Metric lines."""
    types = {name: infer_type(v) for name, v in (summary.get("metrics") or {}).items()
             if isinstance(v, dict) and "{" not in name}
    types.update(from_output or {})
    return types


def test_run_seconds(summary: Mapping[str, Any], fallback_s: float) -> float:
    """k6's own test duration (a Counter's rate is count / it), else ``fallback_s``."""
    iterations = (summary.get("metrics") or {}).get("iterations") or {}
    if iterations.get("count") and iterations.get("rate"):
        return iterations["count"] / iterations["rate"]
    return fallback_s


def samples_for_slos(path: Path, spec: SloSpec) -> pd.DataFrame:
    """Only the rows, columns and tags the SLOs look at: a fraction of the file (13 points per request)."""
    return load_samples(path, metrics=sorted({o.metric for o in spec.objectives}),
                        columns=["time", "metric", "value"], tags=sorted({t for o in spec.objectives for t in o.tags}))


def evaluate(spec: SloSpec, summary: Mapping[str, Any], samples: Path | None, fallback_s: float,
             types_from_output: Mapping[str, str] | None = None) -> Evaluation:
    """Judge every objective on ``summary`` (k6's export; may be empty) and on the ``samples`` Parquet file."""
    types = metric_types(summary, types_from_output)
    warnings = spec.resolve_types(types)
    samples_results, counts = None, None
    if samples is not None and spec.objectives:
        frame = samples_for_slos(samples, spec)
        counts = frame["metric"].value_counts().to_dict()
        samples_results = evaluate_samples(spec, frame, duration_s=test_run_seconds(summary, fallback_s))
    slo_results = evaluate_summary(spec, summary, counts) if summary else (samples_results or [])
    if samples_results and summary:
        warnings += [f"{a.name}: summary says {a.status}, raw samples say {b.status}"
                     for a, b in zip(slo_results, samples_results, strict=False) if a.status != b.status]
    return Evaluation(slo_results, samples_results, types, warnings)
