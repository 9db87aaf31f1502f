"""``hardening import``: a run record from a k6 run made elsewhere (another CI job, a k6 Cloud export, the
runners of the k6-operator), so its history, reports and baselines sit beside the runs made here.

Inputs: k6's ``--summary-export`` and one or more raw outputs (``--out json`` NDJSON or ``--out csv``, plain or
``.gz``, merged into the record's samples one file at a time); a quoted glob pattern names several files.
Several summaries (one per k6-operator runner, each of its own execution segment) make one summary of the whole
test, computed from every runner's samples (``instances.whole_summary``, as ``hardening loadtest --instances``
does); each runner's own summary is kept as ``k6/instance-<i>/summary.json``. Order of work, each step failing
with the documented exit code before anything is published:

1. check every input (files present, summary readable, SLO file valid, script loadable by ``k6 inspect``) -> 2;
2. ingest the raw files into a hidden temporary file under ``--out`` (a corrupt file -> 2, nothing left);
3. the run's start and end are the first and last sample's time, so imported history keeps its real order; the
   run id is made from that start;
4. the record is written like the runner's (``RunRecordWriter``: ``.tmp-<id>/``, then one rename): SLOs evaluated
   on the summary and on the samples, key metrics from the summary with the types of k6's own Metric lines.

Which SLOs apply: ``--slo FILE`` plus the thresholds of ``--script`` (read by ``k6 inspect``), merged like the
runner does; when neither gives one, the thresholds k6 itself evaluated in that run (the summary's
``thresholds`` entries, origin ``script``); with none anywhere, exit 2 (``--no-slo`` records without a gate).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardening.errors import EXIT_FAIL, EXIT_OK, ConfigError
from hardening.loadtest.console import console_summary
from hardening.loadtest.evaluate import evaluate
from hardening.loadtest.samples import IngestStats, ingest_k6_outputs, k6_output_format, write_per_second
from hardening.loadtest.slo import (
    SloSpec,
    load_slo,
    overall_status,
    parse_slo,
)
from hardening.record.layout import RunLayout
from hardening.record.model import (
    GitInfo,
    K6Info,
    RunRecord,
    RunStatus,
    SloOrigin,
    SloStatus,
    key_metrics,
)
from hardening.record.writer import RunRecordWriter, git_info, new_run_id

NO_SLO_HELP = (
    "nothing would gate this imported run: no --slo FILE, no thresholds in --script, and the k6 summary holds no "
    "thresholds. Add SLOs with --slo FILE (JSON or YAML: {\"thresholds\": {\"http_req_duration\": "
    "[\"p(95)<500\"]}}), pass the --script the run used, or pass --no-slo to record it without a gate.")
IMPORTED = "imported: k6 ran elsewhere"


@dataclass
class ImportOptions:
    summary: list[Path] | Path  # one file, or one per runner of a split test (glob patterns allowed)
    raw: list[Path] | Path  # glob patterns allowed
    script: Path | None = None
    slo: Path | None = None
    no_slo: bool = False
    environment: str = "local"
    profile: str | None = None
    out: Path = Path("data/runs")
    k6_env: dict[str, str] = field(default_factory=dict)  # for `k6 inspect` of a script whose options read __ENV


@dataclass
class ImportOutcome:
    status: RunStatus
    exit_code: int
    record: Path
    run: RunRecord
    stats: IngestStats


def read_summary(path: Path) -> dict[str, Any]:
    """k6's ``--summary-export`` (or a ``handleSummary`` JSON with ``metrics``); ConfigError when unusable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"k6 summary not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read k6 summary {path}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"k6 summary {path} is not valid JSON ({exc}); pass the file k6 wrote with "
                          "--summary-export") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ConfigError(f"k6 summary {path} has no \"metrics\" object: pass the file k6 wrote with "
                          "--summary-export (or handleSummary's data as JSON)")
    return data


def summary_thresholds(*summaries: dict[str, Any]) -> dict[str, list[str]]:
    """The thresholds k6 evaluated in that run, ``{metric key: [expression, ...]}``, from either summary shape
    (several summaries: each expression once)."""
    out: dict[str, list[str]] = {}
    for summary in summaries:
        for key, entry in (summary.get("metrics") or {}).items():
            thresholds = entry.get("thresholds") if isinstance(entry, dict) else None
            if isinstance(thresholds, dict):
                listed = out.setdefault(str(key), [])
                listed.extend(str(e) for e in thresholds if str(e) not in listed)
    return {key: exprs for key, exprs in out.items() if exprs}


def _natural(path: Path) -> list[Any]:
    """Sort key: runner-2 before runner-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def expand_paths(given: list[Path], what: str) -> list[Path]:
    """Each path as given, or the files its glob pattern matches (in natural order); ConfigError if none."""
    out: list[Path] = []
    for path in given:
        if not path.exists() and glob.has_magic(str(path)):
            matched = sorted((Path(p) for p in glob.glob(str(path)) if Path(p).is_file()), key=_natural)
            if not matched:
                raise ConfigError(f"no {what} matches {str(path)!r}")
            out.extend(matched)
        elif not path.is_file():
            raise ConfigError(f"{what} not found: {path}")
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def resolve_spec(opts: ImportOptions, summaries: list[dict[str, Any]]) -> tuple[SloSpec, SloSpec | None]:
    """The SLOs of the import: SLO file + the script's own thresholds, else the summary's (see module doc).
    Returns (the spec, the SLO file's own spec or None)."""
    from hardening.loadtest.runner import combined_spec

    file_spec = load_slo(opts.slo) if opts.slo is not None and not opts.no_slo else None
    script_thresholds = None
    if opts.script is not None:
        if not opts.script.is_file():
            raise ConfigError(f"k6 script not found: {opts.script}")
        if not opts.no_slo:
            from hardening.loadtest.k6 import find_k6
            from hardening.loadtest.wrapper import script_options

            script_thresholds = script_options(find_k6(), opts.script, opts.k6_env).get("thresholds")
    if opts.no_slo:
        return parse_slo({"thresholds": {}}, source="--no-slo"), None
    spec = combined_spec(file_spec, script_thresholds, opts.script or Path("(none)"))
    if not spec.objectives:
        names = ", ".join(map(str, opts.summary))
        spec = parse_slo({"thresholds": summary_thresholds(*summaries)}, source=f"k6 summary {names}",
                         origin=SloOrigin.SCRIPT)
    if not spec.objectives:
        raise ConfigError(NO_SLO_HELP)
    return spec, file_spec


def _ingest(opts: ImportOptions) -> tuple[Path, Path, IngestStats]:
    """Raw files -> a hidden temporary samples file (``RunLayout.samples``) under ``--out``: (its folder, the
    file, stats)."""
    try:
        opts.out.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".tmp-import-", dir=opts.out))
    except OSError as exc:
        raise ConfigError(f"cannot write run records under {opts.out}: {exc.strerror or exc}. Choose a writable "
                          "directory with --out.") from exc
    try:
        samples = RunLayout(folder).samples
        stats = ingest_k6_outputs(opts.raw, samples)
        if stats.points == 0 or stats.first_time is None or stats.last_time is None:
            raise ConfigError(f"no samples in {', '.join(map(str, opts.raw))}: nothing tells when the run happened "
                              "(pass k6's --out json or --out csv output of the run)")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, samples, stats


def _paths(given: Any) -> list[Path]:
    """One path or several, as a list of Paths."""
    if given is None:
        return []
    if isinstance(given, str | os.PathLike):
        return [Path(given)]
    return [Path(p) for p in given]


def run_import(opts: ImportOptions) -> ImportOutcome:
    """Build one run record from the run described by ``opts`` (see the module doc); the outcome's ``exit_code``
    is 0 (SLOs met or ``no_slo``) or 1 (an SLO failed). Bad input raises ``ConfigError`` before anything is
    written."""
    raw, summary = _paths(opts.raw), _paths(opts.summary)
    if not raw:
        raise ConfigError("no raw k6 output given: pass --raw FILE (k6's --out json or --out csv, plain or .gz)")
    if not summary:
        raise ConfigError("no k6 summary given: pass --summary FILE (k6's --summary-export)")
    opts = dataclasses.replace(opts, raw=expand_paths(raw, "k6 output file"),
                               summary=expand_paths(summary, "k6 summary"))
    summaries = [read_summary(path) for path in opts.summary]
    spec, file_spec = resolve_spec(opts, summaries)
    formats = {path: k6_output_format(path) for path in opts.raw}  # refuses a file that is neither, before work
    folder, samples, stats = _ingest(opts)
    try:
        git = git_info()
        writer = RunRecordWriter(opts.out, new_run_id(git["commit"], stats.first_time))
        try:
            os.replace(samples, writer.layout.samples)
            if file_spec is not None:
                file_spec.write_k6_json(writer.layout.slo_file)
            outcome = _finish(opts, spec, writer, summaries, stats, git, csv="csv" in formats.values())
        except BaseException:
            writer.discard()
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return outcome


def _whole_summary(opts: ImportOptions, spec: SloSpec, writer: RunRecordWriter, summaries: list[dict[str, Any]],
                   stats: IngestStats, span_s: float) -> dict[str, Any]:
    """The run's summary: k6's own when there is one; several (one per runner): the whole test's, computed from
    every runner's samples, with each runner's own summary kept as ``k6/instance-<i>/summary.json``."""
    files = writer.layout
    if len(summaries) == 1:
        shutil.copyfile(opts.summary[0], files.k6_summary)
        return summaries[0]
    from hardening.atomic import write_json
    from hardening.loadtest.instances import k6_test_seconds, whole_summary

    for index, path in enumerate(opts.summary, start=1):
        files.instance_summary(index).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, files.instance_summary(index))
    durations = [d for d in map(k6_test_seconds, summaries) if d]
    whole = whole_summary(files.samples, summaries, metric_types=stats.metric_types,
                          trend_stats=spec.summary_trend_stats().split(","),
                          duration_s=max(durations) if durations else span_s,
                          submetrics=[o.key for o in spec.objectives if o.tags])
    write_json(files.k6_summary, whole)
    return whole


def _finish(opts: ImportOptions, spec: SloSpec, writer: RunRecordWriter, summaries: list[dict[str, Any]],
            stats: IngestStats, git: dict[str, str | None], csv: bool) -> ImportOutcome:
    files = writer.layout
    warnings = list(stats.warnings)
    write_per_second(files.samples, files.per_second)
    started, finished = stats.first_time, stats.last_time
    span_s = (finished - started).total_seconds()
    summary = _whole_summary(opts, spec, writer, summaries, stats, span_s)
    if len(summaries) > 1:
        warnings.append(f"{len(summaries)} k6 summaries (one per runner): the run's summary is the whole test's, "
                        "computed from every runner's samples; each runner's own is in k6/instance-<i>/")

    # Metric types: k6's own Metric lines (JSON) win; CSV has none, so the summary's shape decides there.
    ev = evaluate(spec, summary, files.samples, span_s, stats.metric_types)
    warnings.extend(ev.warnings)
    slo_results, samples_results = ev.slo_results, ev.samples_results
    if csv and samples_results:
        warnings.append("raw samples from k6 CSV: values have 6 decimals and times whole seconds (by default), so "
                        "SLOs from the samples may differ from the summary in the last digits")

    ungated = opts.no_slo
    if ungated:
        warnings.append("no SLOs: the run is recorded without a gate (--no-slo)")
    passed = ungated or overall_status(slo_results) == SloStatus.PASS
    status = RunStatus.PASS if passed else RunStatus.FAIL
    files.slo_result_txt.write_text("PASS\n" if passed else "FAIL\n")
    run = RunRecord(
        run_id=writer.run_id,
        status=status,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        duration_s=round(span_s, 3),
        environment=opts.environment,
        profile=opts.profile,
        script=str(opts.script) if opts.script is not None else None,
        script_sha256=hashlib.sha256(opts.script.read_bytes()).hexdigest() if opts.script is not None else None,
        git=GitInfo(**git),
        k6=K6Info(exit_meaning=IMPORTED),
        slo=spec.to_dict(),
        slo_results=slo_results,
        slo_results_from_samples=samples_results,
        metrics=key_metrics(summary, ev.types),
        warnings=warnings,
    )
    record = writer.finalize(run)
    print(console_summary(run), file=sys.stdout)
    print(f"imported {stats.points:,} samples from {stats.files} file(s), {started.isoformat()} to "
          f"{finished.isoformat()}", file=sys.stderr)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    sys.stderr.flush()
    print(f"run record: {record}", file=sys.stdout, flush=True)  # the last line: where the record is
    return ImportOutcome(status=status, exit_code=EXIT_OK if passed else EXIT_FAIL, record=record, run=run,
                         stats=stats)
