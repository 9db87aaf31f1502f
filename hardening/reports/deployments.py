"""The deployments report (``notebooks/deployments.ipynb``): DORA-style figures from the deployment ledger.

The computations (deployment frequency, change failure rate, rollbacks, time to detect / roll back /
restore, lead time) are :mod:`hardening.deploy.dora`'s; this module only shows them.

:class:`DeploymentsReport` is the view model the notebook calls; :class:`DeploymentsSummary` is its side file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from IPython.display import HTML

from hardening.analysis import units
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
    join,
    note,
    number,
    table,
)

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

NAME, TITLE = "deployments", "Deployments"
LEDGER_COLUMNS = ["started_at", "env", "service", "version", "status", "rollback_of", "reason"]
CFR_OK = 0.15  # change failure rate at or below this shows green
RECOVERY_UNITS = {"time_to_detect_s": "s", "time_to_rollback_s": "s", "time_to_restore_s": "s", "started_at": "time"}


@dataclass
class DeploymentsSummary(Summary, dora.DoraMetrics):
    """The DORA figures of :class:`hardening.deploy.dora.DoraMetrics`, plus what the report told the reader."""

    environment_note: str | None = None  # set when the asked environment had no deployments
    ledger_lines_skipped: int = 0
    environments: list[str] = field(default_factory=list)  # every environment in the ledger (the timeline's)

    def index_line(self) -> str | None:
        if self.change_failure_rate is None:
            return None
        return (f"Deployments ({figures_scope(self.env, self.service, self.environments)}): change failure rate "
                f"{units.pct(self.change_failure_rate)}")


def all_environments(envs: list[str]) -> str:
    return "all environments: " + (", ".join(envs) if envs else "none")


def figures_scope(env: str | None, service: str | None, envs: list[str]) -> str:
    """What the DORA figures cover: ``environment production`` or ``all environments: production, staging``."""
    scope = f"environment {env}" if env else all_environments(envs)
    return scope + (f", service {service}" if service else "")


def dora_frame(m: dora.DoraMetrics) -> pd.DataFrame:
    rows = [
        ("deployments (incl. rollbacks)", number(m.deployments)), ("changes", number(m.changes)),
        ("deployment frequency", f"{_rate(m.deploys_per_day)} per day ({_rate(m.deploys_per_week)} per week)"),
        ("change failure rate", f"{units.pct(m.change_failure_rate)} ({m.failed_changes} of {m.changes} changes)"),
        ("rollbacks", f"{m.rollbacks} ({units.pct(m.rollback_rate)} of changes)"),
        ("time to detect (median / p90)", f"{duration(m.time_to_detect_s_median)} / {duration(m.time_to_detect_s_p90)}"),
        ("time to roll back (median)", duration(m.time_to_rollback_s_median)),
        ("time to restore (median / p90)",
         f"{duration(m.time_to_restore_s_median)} / {duration(m.time_to_restore_s_p90)}"),
        ("lead time commit → green (median / p90)",
         f"{duration(m.lead_time_s_median)} / {duration(m.lead_time_s_p90)}"),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def environments(ledger: pd.DataFrame) -> list[str]:
    return sorted(ledger["env"].dropna().astype(str).unique()) if "env" in ledger else []


def dora_banner(m: dora.DoraMetrics, envs: list[str] | None = None) -> HTML:
    """The headline figures and what they cover; when the page also shows other environments (timeline,
    ledger), the banner names them all."""
    envs = envs or []
    cfr = m.change_failure_rate
    kind = "other" if cfr is None else "pass" if cfr <= CFR_OK else "fail"
    head = (f"Change failure rate {units.pct(cfr)} · {_rate(m.deploys_per_week)} deploys/week · "
            f"{m.rollbacks} rollbacks")
    lines = [f"Figures: {figures_scope(m.env, m.service, envs)}; {m.deployments} deployments over "
             f"{_rate(m.days)} days"]
    if m.env and envs != [m.env]:
        lines.append(f"Timeline and ledger below: {all_environments(envs)}")
    return banner(head, lines, kind)


def timeline_figure(ledger: pd.DataFrame) -> plt.Figure:
    """Each deployment as a dot on its start time, per environment; rollbacks as triangles."""
    import matplotlib.dates as mdates

    if ledger.empty:
        return charts.message("The ledger has no deployments.")
    envs = list(dict.fromkeys(ledger["env"].fillna("?")))
    fig, ax = charts.subplots(figsize=(charts.WIDTH, 0.7 * len(envs) + 2.4))
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
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=6, tz="UTC"))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d\n%H:%M", tz="UTC"))
    ax.set_xlabel("deployment start (UTC)")
    ax.legend(loc="upper left", fontsize=9, ncol=2)
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
        return join(dora_banner(self.metrics, environments(self.ledger)),
                    note(self.env_note) if self.env_note else None)

    def metrics_table(self) -> HTML:
        return table(dora_frame(self.metrics), "Metrics")

    def timeline_figure(self) -> plt.Figure:
        return timeline_figure(self.ledger)

    def recovery_table(self) -> HTML:
        return table(dora.recovery_times(dora.select(self.ledger, self.env, self.service)),
                     f"Failed or rolled-back changes ({figures_scope(self.env, self.service, environments(self.ledger))})",
                     units=RECOVERY_UNITS)

    def ledger_table(self, max_rows: int = 25) -> HTML:
        return table(self.ledger[LEDGER_COLUMNS].iloc[::-1],
                     f"Ledger, newest first ({all_environments(environments(self.ledger))})", max_rows=max_rows)

    def summary(self) -> DeploymentsSummary:
        return DeploymentsSummary(**vars(self.metrics), environment_note=self.env_note,
                                  ledger_lines_skipped=int(self.ledger.attrs.get("skipped", 0)),
                                  environments=environments(self.ledger))
