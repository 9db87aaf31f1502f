"""``hardening report``: turn a run record (and the history) into offline HTML reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hardening.errors import EXIT_OK
from hardening.reports import DEFAULT_LEDGER


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="build offline HTML reports (run, Redis, SLO history, deployments) for one run",
        description="Execute the report notebooks with papermill and render offline HTML (code hidden, no "
        "network) into --out, with index.html (verdict on top) and the executed .ipynb beside each page.",
        epilog="exit codes: 0 reports built (whatever the run's verdict); 1 a notebook failed (the notebook, "
        "cell and error are named; the executed notebook is kept); 2 missing or corrupt run record or ledger, "
        "unreadable history folder, or an --out that is not a writable folder (checked before any notebook runs). "
        "Skipped ledger lines and run records are printed as `warning: ...`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run", required=True, type=Path, help="run record folder, e.g. data/runs/<run_id>")
    p.add_argument("--history", type=Path, default=None,
                   help="folder of run records for baseline and SLO history (default: the run's parent folder)")
    p.add_argument("--no-history", action="store_true", help="skip the baseline comparison and SLO history")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports)")
    p.add_argument("--ledger", type=Path, default=None,
                   help=f"deployment ledger for the deployments report (default {DEFAULT_LEDGER} when it exists)")
    p.add_argument("--workers", type=int, default=2, help="notebooks executed in parallel (default 2)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from hardening.errors import ConfigError

    if args.ledger is not None and not args.ledger.is_file():
        raise ConfigError(f"ledger {args.ledger} not found: pass an existing ledger.jsonl or omit --ledger")
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    from hardening.reports.build import build_reports_for

    index = build_reports_for(args.run, args.history, args.out, args.ledger, args.workers,
                              use_history=not args.no_history, stream=sys.stdout)
    print(f"reports: {index.resolve()}")
    return EXIT_OK
