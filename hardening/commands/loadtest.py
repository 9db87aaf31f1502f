"""``hardening loadtest`` (against any service) and ``hardening demo`` (embedded Redis + demo service)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hardening.demo import DEMO_SCRIPT, DEMO_SLO
from hardening.errors import EXIT_FAIL, EXIT_OK
from hardening.loadtest import DEFAULT_SCRIPT, DEFAULT_SLO, PROFILES
from hardening.processes import STOP_SIGNALS


def _add_common(p: argparse.ArgumentParser, script: Path, slo_help: str) -> None:
    p.add_argument("--script", type=Path, default=script, help=f"k6 script (default {script})")
    slo = p.add_mutually_exclusive_group()
    slo.add_argument("--slo", type=Path, default=None, help=slo_help)
    slo.add_argument("--no-slo", action="store_true",
                     help="no SLO file: record the run without gating it (exit 0 unless k6 errs)")
    p.add_argument("--profile", choices=PROFILES, default="demo",
                   help="load shape: quick (~8 s, tests), demo (~1 min), full (seed's ~8 min)")
    p.add_argument("--out", type=Path, default=Path("data/runs"),
                   help="where run records go: <out>/<run_id>/ (default data/runs)")
    p.add_argument("--warn-only", action="store_true",
                   help="exit 0 even when SLOs fail (the seed's 'pipeline continues')")
    p.add_argument("--env-name", dest="environment", default=os.environ.get("HARDENING_ENV", "local"),
                   help="environment recorded in the run (default $HARDENING_ENV or 'local')")
    p.add_argument("--redis-interval", type=float, default=1.0, help="Redis sampler period in seconds")
    p.add_argument("--keep-raw", action="store_true", help="keep k6's raw NDJSON beside the Parquet samples")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no live progress line")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit 1 when the run regressed against its baseline (docs/judge.md), even if SLOs pass")
    p.add_argument("--junit", type=Path, default=None, metavar="FILE",
                   help="write JUnit XML: one test case per SLO and per regression check")


def register(sub) -> None:
    p = sub.add_parser(
        "loadtest", help="run k6 against a service with SLO gates and write a run record",
        description="Run the real k6 against --base-url with the SLO file as thresholds; observe Redis "
        "(REDIS_URL) before/during/after; write data/runs/<run_id>/. Exit 0 pass, 1 SLO fail "
        "(0 with --warn-only), 2 usage/config error, 3 infrastructure error, 130 interrupted.",
    )
    p.add_argument("--base-url", default=os.environ.get("BASE_URL"),
                   help="service under test (default $BASE_URL)")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                   help="Redis to observe during the run (default $REDIS_URL; none: no Redis data)")
    p.add_argument("--instances", type=int, default=1, metavar="N",
                   help="run the test as N k6 processes on this machine, one execution segment each, started and "
                   "stopped together; one run record, SLOs judged on all samples together (default 1)")
    _add_common(p, DEFAULT_SCRIPT,
                f"SLO file, JSON or YAML, merged with the script's own thresholds and handed to k6 (default "
                f"{DEFAULT_SLO} when it exists here, else only the script's thresholds)")
    p.set_defaults(func=cmd_loadtest)

    d = sub.add_parser(
        "demo", help="start embedded Redis + the demo service, load-test it, build the reports",
        description="Everything on 127.0.0.1: an embedded Redis (or REDIS_URL), the demo service, "
        "`hardening loadtest`, then `hardening report`. Exit codes as for loadtest.",
    )
    d.add_argument("--fault-latency-ms", type=int, default=0, help="inject latency into API routes")
    d.add_argument("--fault-error-rate", type=float, default=0.0, help="share of API requests answered 500")
    d.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (default reports)")
    d.add_argument("--no-report", dest="report", action="store_false", help="skip building HTML reports")
    _add_common(d, DEMO_SCRIPT, "SLO file (default: the demo's own, shipped with hardening)")
    d.set_defaults(func=cmd_demo)


def _options(args, base_url: str, redis_url: str | None):
    from hardening.loadtest.runner import LoadTestOptions

    return LoadTestOptions(
        base_url=base_url, script=args.script, slo=args.slo, no_slo=args.no_slo, profile=args.profile, out=args.out,
        fail_on_regression=args.fail_on_regression, junit=args.junit,
        warn_only=args.warn_only, environment=args.environment, redis_url=redis_url,
        redis_interval=args.redis_interval, keep_raw=args.keep_raw, progress=args.progress,
        instances=getattr(args, "instances", 1),
    )


def cmd_loadtest(args) -> int:
    if not args.base_url:
        print("error: give the service under test with --base-url URL (or BASE_URL); "
              "`hardening demo` runs against the bundled demo service", file=sys.stderr)
        return 2
    with STOP_SIGNALS:
        from hardening.loadtest.runner import run_loadtest

        return run_loadtest(_options(args, args.base_url, args.redis_url)).exit_code


def cmd_demo(args) -> int:
    # Ctrl-C, SIGTERM or SIGHUP at any moment still stops the embedded Redis and the demo service.
    with STOP_SIGNALS:
        return _demo(args)


def _demo(args) -> int:
    if args.slo is None and not args.no_slo and args.script == DEMO_SCRIPT:
        args.slo = DEMO_SLO
    from hardening.demo.embedded_redis import EmbeddedRedis
    from hardening.demo.service import DemoService
    from hardening.loadtest.runner import run_loadtest

    env = {"DEMO_FAULT_LATENCY_MS": str(args.fault_latency_ms), "DEMO_FAULT_ERROR_RATE": str(args.fault_error_rate)}
    external = os.environ.get("REDIS_URL")
    # The embedded server starts with latency monitoring on (10 ms) and a 1 ms slowlog, so the demo's
    # Redis report has something to show; an external REDIS_URL is left as configured.
    monitored = ["--latency-monitor-threshold", "10", "--slowlog-log-slower-than", "1000"]
    with EmbeddedRedis(extra_args=monitored) if not external else _Existing(external) as redis_server:
        print(f"hardening: Redis at {redis_server.url}", file=sys.stderr)
        with DemoService(redis_server.url, env=env) as service:
            print(f"hardening: demo service at {service.base_url} (pid {service.pid})", file=sys.stderr)
            outcome = run_loadtest(_options(args, service.base_url, redis_server.url))
    if args.report and outcome.record is not None and outcome.exit_code in (EXIT_OK, EXIT_FAIL):
        from hardening.reports.build import build_reports_for

        index = build_reports_for(outcome.record, history=args.out, out=args.reports)
        print(f"report: {index.resolve()}")
    return outcome.exit_code


class _Existing:
    """REDIS_URL given: use it as is (nothing to start or stop)."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None
