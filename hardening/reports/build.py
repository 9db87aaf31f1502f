"""Build the HTML report set of one run: papermill executes the notebooks, nbconvert renders offline HTML.

- Notebooks run in-process through ``papermill.execute_notebook`` (``kernel_name="python3"``, absolute
  paths, no ``cwd``: it is process-wide), two at a time on threads: each has its own kernel process.
- One ``HTMLExporter`` is built once and reused (building it dominates a conversion); code cells are
  hidden (``exclude_input``), stderr streams are dropped from the HTML (they stay in the executed
  ``.ipynb`` kept beside it for audit), and the ``offline`` template removes every network script.
- Each notebook's last cell writes its report's typed summary (a side file); they are read back into
  the same classes (``RunReportSummary``, ``RedisReportSummary``, ...). ``index.html`` shows the verdict,
  then the key numbers (each SLO's observed value against its target, requests/s, error rate, the
  baseline verdict), then each report's line, then the links, in the reports' one style.
- The Redis report is built only when the run observed Redis (``record.redis`` or a ``redis/`` folder).
- A failing cell raises :class:`NotebookFailed` (exit 1) naming the notebook, the cell and the error.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import nbformat

from hardening import atomic
from hardening.analysis import units
from hardening.errors import EXIT_FAIL, HardeningError
from hardening.masking import mask
from hardening.record.layout import RunLayout
from hardening.record.model import RunRecord, SloStatus
from hardening.record.reader import read_record, resolve_path
from hardening.reports import DEFAULT_LEDGER, deployments, redis_report, run_report, slo_history
from hardening.reports.style import (
    CSS,
    SUMMARY_MIMETYPE,
    Summary,
    banner_html,
    duration,
    esc,
    number,
    page,
    per_second,
    read_summary,
    tone,
    when,
)

# Package data (found the same way in a checkout and in an installed wheel).
TEMPLATES = Path(str(resources.files("hardening.reports") / "templates"))
NOTEBOOKS = Path(str(resources.files("hardening.reports") / "notebooks"))
CELL_TIMEOUT_S = 300
EXPECTED_COST = {slo_history.NAME: 4, run_report.NAME: 3, redis_report.NAME: 2, deployments.NAME: 1}  # relative


@dataclass(frozen=True)
class Report:
    """One report: its notebook (``<name>.ipynb``), page title and the typed summary its side file holds."""

    name: str
    title: str
    summary_type: type[Summary]


RUN_REPORT = Report(run_report.NAME, run_report.TITLE, run_report.RunReportSummary)
REDIS_REPORT = Report(redis_report.NAME, redis_report.TITLE, redis_report.RedisReportSummary)
SLO_HISTORY = Report(slo_history.NAME, slo_history.TITLE, slo_history.SloHistorySummary)
DEPLOYMENTS = Report(deployments.NAME, deployments.TITLE, deployments.DeploymentsSummary)
REPORTS = (RUN_REPORT, REDIS_REPORT, SLO_HISTORY, DEPLOYMENTS)
OUTPUT_SUFFIXES = (".html", ".ipynb", ".summary.json")


class NotebookFailed(HardeningError):
    """A report notebook raised: exit 1, naming notebook, cell index and error."""

    exit_code = EXIT_FAIL

    def __init__(self, notebook: str, cell_index: int | None, ename: str, evalue: str, executed: Path | None):
        self.notebook, self.cell_index, self.ename, self.evalue, self.executed = (
            notebook, cell_index, ename, evalue, executed)
        where = f"cell {cell_index}" if cell_index is not None else "before any cell ran"
        kept = f"; executed notebook kept at {executed}" if executed and executed.exists() else ""
        super().__init__(f"notebook {notebook} failed at {where}: {ename}: {evalue}{kept}")


@dataclass
class ReportJob:
    report: Report
    notebook: Path
    parameters: dict[str, Any]
    summary_path: Path

    @property
    def name(self) -> str:
        return self.report.name

    @property
    def title(self) -> str:
        return self.report.title


@dataclass
class ReportResult:
    job: ReportJob
    html: Path
    ipynb: Path
    summary: Summary | None = None  # the report's typed side file; None when it could not be read
    seconds: float = 0.0
    html_bytes: int = 0


def notebook_path(name: str) -> Path:
    candidate = NOTEBOOKS / f"{name}.ipynb"
    if candidate.is_file():
        return candidate
    raise HardeningError(f"report notebook {name}.ipynb not found in {NOTEBOOKS}: reinstall hardening")


def redis_observed(run_dir: Path, record: RunRecord | None = None) -> bool:
    """The run observed Redis: its record has a Redis summary or its record folder a ``redis/`` folder."""
    record = record if record is not None else read_record(run_dir)
    return record.redis is not None or RunLayout(run_dir).redis.folder.is_dir()


def plan(run_dir: Path, history_dir: Path | None, out_dir: Path, ledger: Path | None = None,
         record: RunRecord | None = None) -> list[ReportJob]:
    """The notebooks to run for one run, with absolute-path parameters: the Redis report only when the run
    observed Redis, the SLO history only with a history, deployments only with a ledger."""
    hist = str(history_dir) if history_dir else ""

    def job(report: Report, **parameters: str) -> ReportJob:
        side = out_dir / f"{report.name}.summary.json"
        return ReportJob(report, notebook_path(report.name), {**parameters, "summary_path": str(side)}, side)

    jobs = [job(RUN_REPORT, run_dir=str(run_dir), history_dir=hist)]
    if redis_observed(run_dir, record):
        jobs.append(job(REDIS_REPORT, run_dir=str(run_dir), history_dir=hist))
    if history_dir:
        jobs.append(job(SLO_HISTORY, history_dir=hist, highlight_run=run_dir.name))
    if ledger:
        jobs.append(job(DEPLOYMENTS, ledger_path=str(ledger)))
    return jobs


def remove_stale(out: Path, jobs: list[ReportJob]) -> list[Path]:
    """Remove the pages of reports this build does not make (a Redis page of an earlier run in the same
    ``--out`` would otherwise sit beside an index that does not link it); only the reports' own file names."""
    planned = {j.name for j in jobs}
    gone = []
    for report in REPORTS:
        if report.name in planned:
            continue
        for suffix in OUTPUT_SUFFIXES:
            path = out / f"{report.name}{suffix}"
            if path.is_file():
                path.unlink()
                gone.append(path)
    return gone


class HtmlRenderer:
    """One reusable HTMLExporter with the offline template; thread-safe through a lock."""

    def __init__(self) -> None:
        from nbconvert import HTMLExporter

        self._lock = threading.Lock()
        self.exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)],
                                     exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)

    def render(self, ipynb: Path, dest: Path, title: str) -> int:
        nb = nbformat.read(ipynb, as_version=4)
        nb = strip_for_html(nb)
        nb.metadata["title"] = title
        with self._lock:
            body, _ = self.exporter.from_notebook_node(nb, resources={"hardening_css": CSS})
        atomic.write_text(dest, body)
        return len(body.encode("utf-8"))


ANALYST_MARKER = "<!-- analyst -->"  # in a markdown cell, what follows is for analysts (parameters), not the HTML


def strip_for_html(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Stakeholder view: no stderr streams (warnings), no papermill parameter cells, no analyst notes."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"parameters", "injected-parameters"}:
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _hidden(o)]
        elif cell.cell_type == "markdown" and ANALYST_MARKER in cell.source:
            cell.source = cell.source.split(ANALYST_MARKER, 1)[0].rstrip()
        cells.append(cell)
    nb.cells = cells
    return nb


def _hidden(output: dict[str, Any]) -> bool:
    if output.get("output_type") == "stream":
        return output.get("name") == "stderr"
    data = output.get("data") or {}
    return bool(data) and set(data) <= {SUMMARY_MIMETYPE}


def _quiet_kernel_manager() -> type:
    """A kernel manager whose kernel process does not write to the user's terminal.

    ipykernel 7 warns on stderr about TCP transport and logs the interrupt it gets at shutdown; neither
    helps a report reader. Cell errors still arrive through the protocol (PapermillExecutionError).
    """
    import subprocess

    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw.setdefault("stdout", subprocess.DEVNULL)
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super()._async_launch_kernel(kernel_cmd, **kw)

        _launch_kernel = _async_launch_kernel

    return QuietKernelManager


def execute(job: ReportJob, out_dir: Path) -> Path:
    """Run one notebook with papermill; NotebookFailed on a cell error (the executed copy is kept)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    executed = out_dir / f"{job.name}.ipynb"
    try:
        pm.execute_notebook(str(job.notebook), str(executed), parameters=job.parameters, kernel_name="python3",
                            progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                            execution_timeout=CELL_TIMEOUT_S, kernel_manager_class=_quiet_kernel_manager())
    except PapermillExecutionError as exc:
        raise NotebookFailed(job.name, exc.cell_index, exc.ename, mask(str(exc.evalue)), executed) from None
    except Exception as exc:  # timeouts (nbclient CellTimeoutError), dead kernels: still name the notebook
        raise NotebookFailed(job.name, None, type(exc).__name__, mask(str(exc).splitlines()[0] if str(exc) else ""),
                             executed) from None
    return executed


def build_reports(run_dir: str | os.PathLike[str], history_dir: str | os.PathLike[str] | None, out_dir: str
                  | os.PathLike[str], ledger: str | os.PathLike[str] | None = None, workers: int = 2,
                  progress: Callable[[str], None] = print) -> list[ReportResult]:
    """Execute and render every report of one run, then write ``index.html``; returns the results."""
    run = resolve_path(run_dir)
    record = read_record(run)  # ConfigError (exit 2) before any kernel starts
    hist = resolve_path(history_dir) if history_dir else None
    led = resolve_path(ledger) if ledger else None
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if os.environ.get("MPLBACKEND", "").lower() == "agg":
        os.environ.pop("MPLBACKEND")  # it would make the kernels drop inline figures
    jobs = plan(run, hist, out, led, record)
    remove_stale(out, jobs)
    if not any(j.report is REDIS_REPORT for j in jobs):
        progress(f"{REDIS_REPORT.name}: not built: Redis was not observed in this run")
    renderer = HtmlRenderer()
    total = len(jobs)
    results: list[ReportResult] = []
    failures: list[NotebookFailed] = []

    def one(i: int, job: ReportJob) -> ReportResult:
        progress(f"[{i}/{total}] {job.name}: executing {job.notebook.name}")
        start = time.perf_counter()
        executed = execute(job, out)
        dest = out / f"{job.name}.html"
        size = renderer.render(executed, dest, f"{job.title} — {record.run_id}")
        seconds = time.perf_counter() - start
        progress(f"[{i}/{total}] {job.name}: done in {seconds:.1f} s -> {dest} ({size / 1024:.0f} KB)")
        return ReportResult(job, dest, executed, read_summary(job.summary_path, job.report.summary_type), seconds,
                            size)

    # longest first (history, then the run report) so two workers finish together; results stay in plan order
    order = sorted(range(total), key=lambda k: EXPECTED_COST.get(jobs[k].name, 0), reverse=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        submitted = {k: pool.submit(one, k + 1, jobs[k]) for k in order}
        for fut in (submitted[k] for k in range(total)):
            try:
                results.append(fut.result())
            except NotebookFailed as exc:
                progress(f"FAILED {exc}")
                failures.append(exc)
    if failures:
        raise failures[0]
    index = write_index(out, record, results, run)
    progress(f"index: {index}")
    return results


# ---------------------------------------------------------------- index.html


@dataclass
class BaselineLine:
    """The baseline verdict as ``index.html`` states it, and where it comes from."""

    text: str
    regression: bool | None  # None: no verdict (no baseline, no history)
    source: str


def baseline_line(run_dir: Path | None, results: list[ReportResult]) -> BaselineLine | None:
    """The judge's headline and regression flag: from the run report's side file (judged now against the
    history), else from the run's stored verdict (``read_verdict``, judged by ``hardening loadtest``)."""
    from hardening.analysis.judge import read_verdict

    summary = next((r.summary for r in results if isinstance(r.summary, run_report.RunReportSummary)), None)
    base = summary.baseline if summary else None
    if base and base.headline and base.headline != run_report.NO_HISTORY:
        judged = base.baseline_id is not None or base.regression
        return BaselineLine(base.headline, base.regression if judged else None, "run report, against the history")
    stored = read_verdict(run_dir) if run_dir else None
    if stored:
        judged = stored.get("status") != "no_baseline"
        return BaselineLine(str(stored.get("headline") or ("REGRESSION" if stored["regression"] else "no regression")),
                            bool(stored["regression"]) if judged else None, "the run's stored verdict, judged at load test")
    return BaselineLine(base.headline, None, "run report") if base and base.headline else None


def key_numbers_html(record: RunRecord, baseline: BaselineLine | None) -> str:
    """Each SLO's observed value against its target (unit, mark, origin), requests/s, error rate, baseline."""
    rows = []
    for s in record.slo_results:
        kind = "pass" if s.status == SloStatus.PASS else "fail"
        rows.append(f'<li class="hz-slo"><span class="hz-result hz-{kind}">{esc(run_report.slo_line(s))}</span></li>')
    if not record.slo_results:
        rows.append('<li class="hz-slo">no SLO results in this run record</li>')
    m = record.metrics
    rows.append(f'<li id="throughput">Throughput: {esc(per_second(m.rps, " req/s"))} '
                f"({esc(number(m.requests))} requests in {esc(duration(record.duration_s))})</li>")
    rows.append(f'<li id="error-rate">Error rate: {esc(units.pct(m.error_rate))} of requests failed</li>')
    if baseline is not None:
        kind = "other" if baseline.regression is None else "fail" if baseline.regression else "pass"
        rows.append(f'<li id="baseline-verdict"><span class="hz-result hz-{kind}">Baseline: {esc(baseline.text)}'
                    f'</span> <span class="hz-muted">({esc(baseline.source)})</span></li>')
    return f'<section id="key-numbers"><h2>Key numbers</h2><ul class="hz-key">{"".join(rows)}</ul></section>'


def write_index(out: Path, record: RunRecord, results: list[ReportResult], run_dir: Path | None = None) -> Path:
    """``index.html``: the verdict, the key numbers, one line per other report, then the links (all escaped)."""
    status, sentence = run_report.verdict_text(record)
    lines = [line for r in results if r.summary and r.job.report is not RUN_REPORT
             and (line := r.summary.index_line())]
    facts = (f"run {record.run_id} · environment {record.environment} · branch {record.git.branch} · "
             f"started {when(record.started_at)}")
    links = "".join(f'<li><a href="{esc(r.html.name)}">{esc(r.job.title)}</a> <span class="hz-muted">'
                    f'({r.html_bytes / 1024:.0f} KB; executed notebook: <a href="{esc(r.ipynb.name)}">'
                    f"{esc(r.ipynb.name)}</a>)</span></li>" for r in results)
    others = ("<h2>Across runs</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul>") if lines else ""
    body = (banner_html(f"Verdict: {status}", [sentence], tone(status), level=1)
            + key_numbers_html(record, baseline_line(run_dir, results)) + others
            + f'<p class="hz-muted">{esc(facts)}</p><h2>Reports</h2><ul id="reports">{links}</ul>'
            + ("" if any(r.job.report is REDIS_REPORT for r in results) else
               '<p class="hz-muted">No Redis page: Redis was not observed in this run.</p>'))
    return atomic.write_text(out / "index.html", page(f"Load-test reports — {record.run_id}", body))


def build_reports_for(record: Path, history: Path | None = None, out: Path = Path("reports"),
                      ledger: Path | None = None, workers: int = 2, use_history: bool = True,
                      stream: TextIO | None = None) -> Path:
    """Build every report of ``record`` (a run folder); returns the path of ``index.html``.

    ``history`` defaults to the run's parent folder, ``ledger`` to data/deployments/ledger.jsonl when it
    exists. Called by ``hardening demo`` after its load test. Raises NotebookFailed (1) / ConfigError (2).
    """
    from hardening.reports.preflight import preflight

    stream = stream or sys.stderr
    if ledger is None and DEFAULT_LEDGER.is_file():
        ledger = DEFAULT_LEDGER
    if not use_history:
        history = None
    elif history is None:
        history = Path(record).resolve().parent
    # exit 2 for a bad ledger, history or --out, and every skipped line or record printed, before any notebook
    preflight(record, history, out, ledger, stream=sys.stderr)

    def progress(line: str) -> None:  # one write per line: two workers report at once
        stream.write(f"report: {line}\n")
        stream.flush()

    build_reports(record, history, out, ledger, workers=workers, progress=progress)
    return Path(out) / "index.html"
