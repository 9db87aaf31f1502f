"""``hardening import``: a run record from a k6 run made elsewhere (its summary export and raw outputs)."""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

from hardening.record.layout import RunLayout


def register(sub) -> None:
    p = sub.add_parser(
        "import", help="build a run record from a k6 run made elsewhere (summary export + raw outputs)",
        description=textwrap.fill(
            "Build a run record from k6's --summary-export and its raw outputs (--out json or --out csv, plain or "
            f".gz; several files are merged into one {RunLayout.SAMPLES}) of a run made elsewhere: another CI job, "
            "a k6 Cloud export, k6-operator runners (one summary per runner: the whole test's summary is computed "
            "from every runner's samples). The run's start and end are its first and last sample. SLOs: --slo FILE "
            "plus the thresholds of --script; without either, the thresholds k6 evaluated in that run (from the "
            "summary). Details: docs/import.md.", 100),
        epilog="exit codes: 0 SLOs met (or --no-slo); 1 an SLO failed; 2 a missing, unreadable or corrupt file, "
        "a bad SLO file, no SLO anywhere. The last line of output names the record's folder.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--summary", type=Path, nargs="+", action="extend", required=True, metavar="FILE",
                   help="k6's --summary-export JSON of the run; one per runner of a split test (a quoted glob "
                        "pattern matches several)")
    p.add_argument("--raw", type=Path, nargs="+", action="extend", required=True, metavar="FILE",
                   help="k6's raw output(s): --out json NDJSON or --out csv, plain or .gz, merged into one "
                        f"{RunLayout.SAMPLES} (repeatable; a quoted glob pattern matches several)")
    p.add_argument("--script", type=Path, default=None,
                   help="the k6 script the run used: recorded, and its options.thresholds gate the import")
    slo = p.add_mutually_exclusive_group()
    slo.add_argument("--slo", type=Path, default=None, metavar="FILE",
                     help="SLO file (JSON or YAML), merged with the script's thresholds")
    slo.add_argument("--no-slo", action="store_true", help="record the run without a gate (exit 0)")
    p.add_argument("--env-name", dest="environment", default=os.environ.get("HARDENING_ENV", "local"),
                   help="environment recorded in the run (default $HARDENING_ENV or 'local')")
    p.add_argument("--profile", default=None, metavar="NAME",
                   help="profile recorded in the run (baselines compare runs of one profile; default none)")
    p.add_argument("--out", type=Path, default=Path("data/runs"),
                   help="where run records go: <out>/<run_id>/ (default data/runs)")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from hardening.loadtest.importer import ImportOptions, run_import

    outcome = run_import(ImportOptions(
        summary=list(args.summary), raw=list(args.raw), script=args.script, slo=args.slo, no_slo=args.no_slo,
        environment=args.environment, profile=args.profile, out=args.out,
    ))
    return outcome.exit_code
