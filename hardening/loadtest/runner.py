"""``hardening loadtest``: one SLO file, a real k6 run, Redis observed around it, one run record.

Order of work (each step fails with a clear message and the documented exit code):
1. check inputs (script, SLO file, URL) -> exit 2;  find k6, reach the target and Redis -> exit 3;
2. ``k6 inspect`` catches script/config errors before any load is sent -> exit 2;
3. run k6 with the SLO file as its thresholds, live progress, Redis snapshot/sampler around it;
4. ingest raw samples (Parquet), evaluate SLOs on k6's summary and on the raw samples;
5. publish the run record atomically and print the seed's console summary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hardening.errors import (
    EXIT_FAIL,
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
    HardeningError,
    InfraError,
)
from hardening.loadtest import DEFAULT_SCRIPT, DEFAULT_SLO, PROFILES
from hardening.loadtest import instances as instmod
from hardening.loadtest import k6 as k6mod
from hardening.loadtest.console import console_summary
from hardening.loadtest.evaluate import evaluate
from hardening.loadtest.instances import MAX_INSTANCES
from hardening.loadtest.samples import ingest_k6_json, write_per_second
from hardening.loadtest.slo import (
    SloSpec,
    load_slo,
    overall_status,
    parse_slo,
)
from hardening.loadtest.wrapper import merge_thresholds, script_options, wrapper_dir, write_wrapper
from hardening.masking import mask, mask_url
from hardening.processes import STOP_SIGNALS
from hardening.record.layout import RedisLayout
from hardening.record.model import (
    GitInfo,
    K6Info,
    KeyMetrics,
    RunRecord,
    RunStatus,
    SloOrigin,
    SloStatus,
    key_metrics,
)
from hardening.record.writer import RunRecordWriter, git_info, new_run_id, utcnow

NO_SLO_HELP = (
    "nothing would gate this run: the script has no options.thresholds and no SLO file was given. Add SLOs "
    "with --slo FILE (JSON or YAML: {\"thresholds\": {\"http_req_duration\": [\"p(95)<500\"]}}; "
    "`hardening init` writes a starter loadtest/slo.json), add thresholds to the script's options, or pass "
    "--no-slo to record the run without gating it.")
# k6 exit codes that mean the script or its options are wrong (user's fix) vs the machinery broke.
K6_CONFIG_ERRORS = {104, 107}


@dataclass
class LoadTestOptions:
    base_url: str
    script: Path = DEFAULT_SCRIPT
    slo: Path | None = None  # None: loadtest/slo.json if present, else the script's own thresholds
    no_slo: bool = False  # record the run without gating it (no SLO file; exit 0 unless k6 errs)
    fail_on_regression: bool = False  # exit 1 when the judge finds a regression against the baseline
    junit: Path | None = None  # JUnit XML: one case per SLO and per regression check
    profile: str = "demo"
    out: Path = Path("data/runs")
    warn_only: bool = False
    environment: str = "local"
    redis_url: str | None = None
    redis_interval: float = 1.0
    keep_raw: bool = False
    k6_env: dict[str, str] = field(default_factory=dict)
    progress: bool = True
    instances: int = 1  # k6 processes on this machine, each running one execution segment (instances.py)


@dataclass
class LoadTestOutcome:
    status: RunStatus
    exit_code: int
    record: Path | None
    run: RunRecord


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """The target accepts TCP connections (k6 would otherwise fail every request for the whole run)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return
    except OSError as exc:
        raise InfraError(f"target {mask_url(url)} is unreachable ({exc.strerror or exc}). "
                         "Start it, or point --base-url at a running one.") from exc


def check_redis(url: str, timeout: float = 3.0) -> None:
    """Some node of ``url`` (a server, or cluster seed nodes) answers PING with these credentials."""
    import redis

    from hardening.redisobs.connection import ToolClient, split_urls

    problems = []
    for seed in split_urls(url):
        client = ToolClient(seed, timeout)
        try:
            client.call("PING")
            return
        except redis.AuthenticationError as exc:
            raise ConfigError(f"Redis {mask_url(seed)} refused the credentials ({exc}). Fix the user name or "
                              "password in the URL given by REDIS_URL / --redis-url.") from exc
        except (redis.RedisError, OSError) as exc:
            problems.append(f"{mask_url(seed)}: {exc}")
        finally:
            client.close()
    raise InfraError(f"Redis is unreachable ({'; '.join(problems)}). Start it, or point REDIS_URL / "
                     "--redis-url at a running one.")


def validate(opts: LoadTestOptions) -> SloSpec:
    if not opts.script.is_file():
        raise ConfigError(f"k6 script not found: {opts.script}. Pass --script PATH (default {DEFAULT_SCRIPT}).")
    if opts.profile not in PROFILES:
        raise ConfigError(f"unknown profile {opts.profile!r}: choose one of {', '.join(PROFILES)}")
    parts = urlsplit(opts.base_url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url must be an http(s) URL such as http://127.0.0.1:8080, "
                          f"got {mask_url(opts.base_url)!r}")
    if opts.redis_url:
        from hardening.redisobs.connection import validated_urls

        validated_urls(opts.redis_url)
    if opts.redis_interval <= 0:
        raise ConfigError(f"--redis-interval must be > 0 seconds, got {opts.redis_interval}")
    if not 1 <= opts.instances <= MAX_INSTANCES:
        raise ConfigError(f"--instances must be between 1 and {MAX_INSTANCES} (k6 processes on this machine), "
                          f"got {opts.instances}")
    source = slo_source(opts)
    return load_slo(source) if source is not None else None


def _observe_redis(opts: LoadTestOptions, out_dir: Path, planned_s: float):
    if not opts.redis_url:
        return contextlib.nullcontext(None)
    from hardening.redisobs import observe

    # The sampler stops by itself even if k6 overruns its plan (graceful stop is 30 s by default).
    return observe(opts.redis_url, out_dir, interval=opts.redis_interval, max_duration=planned_s + 90)


def slo_source(opts: LoadTestOptions) -> Path | None:
    """The SLO file that applies: --slo, else ./loadtest/slo.json when present (said on the console),
    else none (the script's own thresholds decide); never one with --no-slo."""
    if opts.no_slo:
        return None
    if opts.slo is not None:
        return opts.slo
    if DEFAULT_SLO.is_file():
        print(f"hardening: using SLO file {DEFAULT_SLO} (found in the current directory; --slo FILE to choose "
              "another, --no-slo for none)", file=sys.stderr)
        return DEFAULT_SLO
    return None


def combined_spec(file_spec: SloSpec | None, script_thresholds: dict | None, script: Path) -> SloSpec:
    """Every threshold that decides the run: the SLO file's (origin slo-file) and the script's own
    ``options.thresholds`` (origin script); one expression on both sides counts once, as slo-file."""
    script_spec = parse_slo({"thresholds": script_thresholds or {}}, source=f"script {script}",
                            origin=SloOrigin.SCRIPT)
    return file_spec.merged_with(script_spec) if file_spec is not None else script_spec


def run_loadtest(opts: LoadTestOptions) -> LoadTestOutcome:
    file_spec = validate(opts)
    k6 = k6mod.find_k6()
    check_reachable(opts.base_url)
    if opts.redis_url:
        check_redis(opts.redis_url)
    k6_env = {"BASE_URL": opts.base_url, "PROFILE": opts.profile, **opts.k6_env}

    git = git_info()
    started = utcnow()
    writer = RunRecordWriter(opts.out, new_run_id(git["commit"], started))
    files = writer.layout
    wrapper_path: Path | None = None
    try:
        if file_spec is not None:
            file_spec.write_k6_json(files.slo_file)
            k6_env["SLO_FILE"] = str(files.slo_file.resolve())  # scripts that read it (the demo's) still can
        requirements = script_options(k6, opts.script, k6_env)
        spec = combined_spec(file_spec, requirements.get("thresholds"), opts.script)
        if not spec.objectives and not opts.no_slo:
            raise ConfigError(NO_SLO_HELP)
        merged, _ = merge_thresholds(requirements.get("thresholds"),
                                     file_spec.k6_options_thresholds() if file_spec else None)
        files.k6_dir.mkdir()
        wrapper_path = write_wrapper(opts.script, {"thresholds": merged}, wrapper_dir(opts.script, files.k6_dir))
        plan = k6mod.plan_run(requirements)
        planned = plan.seconds  # iteration-based: maxDuration, an upper bound (the Redis sampler's stop)
        split = opts.instances > 1
        printer = ((instmod.GroupProgressPrinter if split else k6mod.ProgressPrinter)(plan) if opts.progress
                   else None)
        shown = f" in {opts.instances} k6 instances" if split else ""
        print(f"hardening: k6 {opts.script} profile={opts.profile} target={mask_url(opts.base_url)} "
              f"{plan.describe()}{shown} -> {writer.final}", file=sys.stderr)
        if split:
            max_vus = requirements.get("maxVUs")
            if isinstance(max_vus, int) and opts.instances > max_vus:
                print(f"warning: the script runs at most {max_vus} VU(s) and k6 splits VUs by execution segment: "
                      f"{opts.instances - max_vus} of the {opts.instances} instances will have none to run",
                      file=sys.stderr)
            run = instmod.InstanceGroup(
                k6=k6, script=wrapper_path, env=k6_env, layout=files, count=opts.instances,
                trend_stats=spec.summary_trend_stats(), on_progress=printer.update if printer else None)
        else:
            run = k6mod.K6Run(
                k6=k6, script=wrapper_path, env=k6_env, planned_s=planned, cwd=files.k6_dir,
                # absolute paths: k6 runs in the record's k6/ folder (handleSummary's files land there)
                summary_path=files.k6_summary.resolve(), raw_path=files.k6_raw.resolve(), log_path=files.k6_log,
                trend_stats=spec.summary_trend_stats(), on_progress=printer.update if printer else None,
            )
        redis_summary = None
        with _observe_redis(opts, files.redis, planned) as obs:
            result = run.run()
        if printer:
            printer.close()
        if obs is not None:
            s = obs.summary
            redis_summary = {"server": s.get("server"), "url": s.get("url"), "summary": s}
        # k6 has stopped: a late Ctrl-C waits until the record is published, then exits 130.
        with STOP_SIGNALS.deferred():
            record = _finish(opts, spec, writer, result, started, git, k6, redis_summary, planned)
    except BaseException:
        # Nothing half-written may look complete: the .tmp- directory is removed unless finished.
        if writer.tmp.exists():
            writer.discard()
        raise
    finally:
        if wrapper_path is not None:
            wrapper_path.unlink(missing_ok=True)
    return record


def _redis_warnings(redis_summary: dict | None) -> list[str]:
    """What the user must know about the Redis observation (details in the record and its redis/ folder)."""
    s = (redis_summary or {}).get("summary") or {}
    out = []
    if s.get("error"):
        out.append(f"Redis observation incomplete: {s['error']}")
    if s.get("gaps"):
        out.append(f"Redis did not answer the sampler for {s.get('gap_seconds', 0):.0f} s during the run "
                   f"({s['gaps']} gap(s) in redis/{RedisLayout.TIMELINE})")
    return out


def _finish(opts, spec, writer, result, started, git, k6, redis_summary, planned) -> LoadTestOutcome:
    warnings: list[str] = []
    summary: dict = {}
    files = writer.layout
    merged = None
    if isinstance(result, instmod.GroupResult):  # N instances: one samples file, the whole test's summary
        merged = instmod.merge(result, files, trend_stats=spec.summary_trend_stats(),
                               submetrics=[o.key for o in spec.objectives if o.tags], keep_raw=opts.keep_raw)
        warnings.extend(merged.warnings)
    summary_path = files.k6_summary
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except ValueError:
            warnings.append(f"{summary_path.name} is unreadable; SLOs evaluated from raw samples only")

    raw = files.k6_raw
    stats = None
    if merged is not None:
        stats = merged.stats  # already ingested (and the raw files removed unless --keep-raw)
    elif raw.exists() and raw.stat().st_size:
        try:
            stats = ingest_k6_json(raw, files.samples)
        except HardeningError as exc:  # keep k6's raw file in the record rather than lose the run
            warnings.append(f"raw samples not ingested, {raw.name} kept: {exc}")
    if stats is not None:
        warnings.extend(stats.warnings)
        write_per_second(files.samples, files.per_second)
    ev = evaluate(spec, summary, files.samples if stats is not None else None, result.seconds,
                  stats.metric_types if stats is not None else None)
    warnings.extend(ev.warnings)
    if stats is not None and merged is None and not opts.keep_raw:
        raw.unlink()
    slo_results, samples_results = ev.slo_results, ev.samples_results
    code = result.exit_code
    if code == 99 and slo_results and all(r.ok for r in slo_results):
        warnings.append("k6 reported thresholds crossed (exit 99), but every SLO here passed: see "
                        f"{files.k6_log.name} for k6's own threshold lines")

    log_text = result.log_path.read_text(errors="replace") if result.log_path.exists() else ""
    result.log_path.write_text(mask(log_text))
    if result.interrupted:
        status, exit_code = RunStatus.INTERRUPTED, EXIT_INTERRUPTED
    elif code in K6_CONFIG_ERRORS:
        status, exit_code = RunStatus.ERROR, EXIT_USAGE
        warnings.append(f"k6 {result.meaning}: {k6mod.k6_message(log_text)}")
    elif code not in (0, 99, 110):  # 108 (exec.test.abort: e.g. setup found no target) is infra
        status, exit_code = RunStatus.ERROR, EXIT_INFRA
        detail = f"see {files.k6_log.name}" if code < 0 else k6mod.k6_message(log_text)
        warnings.append(f"k6 {result.meaning}: {detail}")
    else:
        ungated = opts.no_slo and not slo_results
        if ungated:
            warnings.append("no SLOs: the run is recorded without a gate (--no-slo)")
        passed = code == 0 and (ungated or overall_status(slo_results) == SloStatus.PASS)
        status = RunStatus.PASS if passed else RunStatus.FAIL
        exit_code = EXIT_OK if passed or opts.warn_only or opts.no_slo else EXIT_FAIL
    warnings.extend(_redis_warnings(redis_summary))
    files.slo_result_txt.write_text("PASS\n" if status == RunStatus.PASS else "FAIL\n")

    finished = utcnow()
    run = RunRecord(
        run_id=writer.run_id,
        status=status,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        duration_s=round((finished - started).total_seconds(), 3),
        planned_duration_s=planned,
        environment=opts.environment,
        profile=opts.profile,
        script=str(opts.script),
        script_sha256=hashlib.sha256(opts.script.read_bytes()).hexdigest(),
        target=mask_url(opts.base_url),
        git=GitInfo(**git),
        k6=K6Info(version=k6mod.k6_version(k6), exit_code=code, exit_meaning=result.meaning),
        slo=spec.to_dict(),
        slo_results=slo_results,
        slo_results_from_samples=samples_results or None,
        metrics=key_metrics(summary, ev.types) if summary else KeyMetrics(),
        redis=redis_summary,
        warnings=warnings,
        instances=merged.instances if merged is not None else None,
    )
    record = writer.finalize(run)
    print(console_summary(run), file=sys.stdout)
    instmod.print_instances(run.instances)
    if status in (RunStatus.PASS, RunStatus.FAIL):
        exit_code = _judge(opts, record, run, exit_code)
    print(f"run record: {record}", file=sys.stderr)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if status == RunStatus.FAIL and opts.warn_only:
        print("warning: SLOs failed; continuing because of --warn-only", file=sys.stderr)
    return LoadTestOutcome(status=status, exit_code=exit_code, record=record, run=run)


def _judge(opts: LoadTestOptions, record: Path, run: RunRecord, exit_code: int) -> int:
    """The one regression judge on the finished record: its verdict (``RunLayout.verdict``), CI outputs, and
    the exit code with --fail-on-regression (a run that already failed its SLOs keeps exit 1)."""
    from hardening.analysis import ci_outputs
    from hardening.analysis.judge import judge_run, write_verdict

    verdict = judge_run(record, history_dir=opts.out)
    write_verdict(record, verdict)
    print(f"baseline: {verdict.headline}", file=sys.stderr)
    if opts.junit is not None:
        opts.junit.parent.mkdir(parents=True, exist_ok=True)
        ci_outputs.write_junit(opts.junit, verdict, run)
    ci_outputs.append_step_summary(ci_outputs.markdown_summary(verdict, run))
    if opts.fail_on_regression and verdict.regression and exit_code == EXIT_OK and not opts.warn_only:
        print(f"error: regression against the baseline: {verdict.headline}", file=sys.stderr)
        return EXIT_FAIL
    return exit_code
