"""The judge's settings, importable without numpy/scipy (the CLI builds its parser from the defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hardening.errors import ConfigError


@dataclass(frozen=True)
class JudgeSettings:
    """Defaults of the judge (docs/judge.md, "Defaults")."""

    pool_size: int = 5  # K: passing runs in a pooled baseline
    tolerance: float = 0.05  # latency: the shift must exceed this share of the baseline median
    confidence: float = 0.98  # two-sided interval; the one-sided tests run at α = (1 − confidence)/2
    min_samples: int = 30  # per side, for a latency series to be tested
    error_tolerance: float = 0.001  # errors: the rate increase's lower bound must exceed this (0.1 pp)
    max_series: int = 50  # per-scenario and per-name series tested at most (the most requested first)
    recompute_window: int = 20  # baseline candidates without a stored verdict that are judged on the fly

    @property
    def alpha(self) -> float:
        return round((1 - self.confidence) / 2, 12)  # 0.01, not 0.010000000000000009

    def validate(self) -> JudgeSettings:
        problems = []
        if self.pool_size < 1:
            problems.append(f"pool size must be at least 1, got {self.pool_size}")
        if not 0 <= self.tolerance < 10:
            problems.append(f"tolerance is a share of the baseline median (0.05 = 5%), got {self.tolerance}")
        if not 0.5 < self.confidence < 1:
            problems.append(f"confidence must be between 0.5 and 1, got {self.confidence}")
        if self.min_samples < 3:
            problems.append(f"min samples must be at least 3, got {self.min_samples}")
        if not 0 <= self.error_tolerance < 1:
            problems.append(f"error tolerance is a rate (0.001 = 0.1 pp), got {self.error_tolerance}")
        if self.recompute_window < 0 or self.max_series < 0:
            problems.append("recompute window and max series cannot be negative")
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "alpha": self.alpha, "correction": "holm"}
