"""The deployments report (``notebooks/deployments.ipynb``): DORA-style figures from the deployment ledger.

The computations (deployment frequency, change failure rate, rollbacks, time to detect / roll back /
restore, lead time) are :mod:`hardening.deploy.dora`'s; this module only shows them.

:class:`DeploymentsReport` is the view model the notebook calls; :class:`DeploymentsSummary` is its side file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from IPython.display import HTML

from hardening.deploy import dora
from hardening.reports import charts
from hardening.reports.style import (
    FAIL_COLOR,
    MUTED_COLOR,
    ORANGE,
    OTHER_COLOR,
    PASS_COLOR,
    Summary,
    banner,
    duration,
    fmt,
    join,
    note,
    pct,
    table,
)

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

NAME, TITLE = "deployments", "Deployments"
LEDGER_COLUMNS = ["started_at", "env", "service", "version", "status", "rollback_of", "reason"]
CFR_OK = 0.15  # change failure rate at or below this shows green


@dataclass
class DeploymentsSummary(Summary, dora.DoraMetrics):
    """The DORA figures of :class:`hardening.deploy.dora.DoraMetrics`, plus what the report told the reader."""

    environment_note: str | None = None  # set when the asked environment had no deployments
    ledger_lines_skipped: int = 0

    def index_line(self) -> str | None:
        if self.change_failure_rate is None:
            return None
        return f"Deployments: change failure rate {self.change_failure_rate * 100:.0f}%"


def dora_frame(m: dora.DoraMetrics) -> pd.DataFrame:
    rows = [
        ("deployments (incl. rollbacks)", m.deployments), ("changes", m.changes),
        ("deployment frequency", f"{fmt(m.deploys_per_day, 2)} per day ({fmt(m.deploys_per_week, 1)} per week)"),
        ("change failure rate", f"{pct(m.change_failure_rate)} ({m.failed_changes} of {m.changes})"),
        ("rollbacks", f"{m.rollbacks} ({pct(m.rollback_rate)} of changes)"),
        ("time to detect (median / p90)", f"{duration(m.time_to_detect_s_median)} / {duration(m.time_to_detect_s_p90)}"),
        ("time to roll back (median)", duration(m.time_to_rollback_s_median)),
        ("time to restore (median / p90)",
         f"{duration(m.time_to_restore_s_median)} / {duration(m.time_to_restore_s_p90)}"),
        ("lead time commit → green (median / p90)",
         f"{duration(m.lead_time_s_median)} / {duration(m.lead_time_s_p90)}"),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def dora_banner(m: dora.DoraMetrics) -> HTML:
    cfr = m.change_failure_rate
    kind = "other" if cfr is None else "pass" if cfr <= CFR_OK else "fail"
    scope = f"environment {m.env or 'all'}" + (f", service {m.service}" if m.service else "")
    head = f"Change failure rate {pct(cfr)} · {fmt(m.deploys_per_week, 1)} deploys/week · {m.rollbacks} rollbacks"
    return banner(head, [f"{scope}; {m.deployments} deployments over {fmt(m.days, 1)} days"], kind)


def timeline_figure(ledger: pd.DataFrame) -> plt.Figure:
    """Each deployment as a dot on its start time, per environment; rollbacks as triangles."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if ledger.empty:
        return charts.message("The ledger has no deployments.")
    envs = list(dict.fromkeys(ledger["env"].fillna("?")))
    fig, ax = plt.subplots(figsize=(charts.WIDTH, 0.6 * len(envs) + 2))
    colors = {"green": PASS_COLOR, "failed": FAIL_COLOR, "rolled_back": ORANGE, "in_progress": MUTED_COLOR}
    for status, part in ledger.groupby(ledger["status"].fillna("?")):
        for is_rb, marker in ((False, "o"), (True, "^")):
            sub = part[part["is_rollback"] == is_rb]
            if sub.empty:
                continue
            y = sub["env"].fillna("?").map(envs.index)
            kind = "rollback" if is_rb else "deploy"
            ax.scatter(sub["started_at"], y, c=colors.get(str(status), OTHER_COLOR), marker=marker, s=60,
                       label=charts.label(f"{kind}: {status}"), zorder=3)
    ax.set_yticks(range(len(envs)), [charts.label(e) for e in envs])
    ax.set_ylim(-0.6, len(envs) - 0.4)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz="UTC"))
    ax.set_xlabel("deployment start (UTC)")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@dataclass
class DeploymentsReport:
    """The ledger and its DORA figures for one environment (and service); each method is one section."""

    ledger: pd.DataFrame
    env: str | None
    service: str | None
    env_note: str | None
    metrics: dora.DoraMetrics

    @classmethod
    def load(cls, ledger_path: str | os.PathLike[str], environment: str = "production",
             service: str = "") -> DeploymentsReport:
        """``environment``/``service`` empty: all. An environment absent from the ledger falls back to all,
        with a note saying so."""
        ledger = dora.read_ledger(ledger_path)
        env, env_note = dora.environment_or_all(ledger, environment or None)
        return cls(ledger, env, service or None, env_note, dora.dora_metrics(ledger, env, service or None))

    def banner(self) -> HTML:
        return join(dora_banner(self.metrics), note(self.env_note) if self.env_note else None)

    def metrics_table(self) -> HTML:
        return table(dora_frame(self.metrics), "Metrics")

    def timeline_figure(self) -> plt.Figure:
        return timeline_figure(self.ledger)

    def recovery_table(self) -> HTML:
        return table(dora.recovery_times(dora.select(self.ledger, self.env, self.service)),
                     "Failed or rolled-back changes")

    def ledger_table(self, max_rows: int = 25) -> HTML:
        return table(self.ledger[LEDGER_COLUMNS].iloc[::-1], "Ledger (newest first)", max_rows=max_rows)

    def summary(self) -> DeploymentsSummary:
        return DeploymentsSummary(**vars(self.metrics), environment_note=self.env_note,
                                  ledger_lines_skipped=int(self.ledger.attrs.get("skipped", 0)))
