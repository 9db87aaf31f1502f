"""``hardening init``: write the starter SLO file, k6 script and GitHub workflow into the current folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hardening.errors import EXIT_OK, EXIT_USAGE
from hardening.init import FAILED, STARTER_FILES, WRITTEN, write_starter

NEXT_STEPS = """next:
  hardening loadtest --base-url http://127.0.0.1:8080 --script loadtest/script.js --slo loadtest/slo.json --profile quick
  hardening report --run data/runs/<run_id> --history data/runs --out reports"""


def register(sub) -> None:
    p = sub.add_parser(
        "init", help="write a starter SLO file, k6 script and GitHub workflow into the current folder",
        description="Write " + ", ".join(STARTER_FILES) + " into the current folder. Existing files are "
        "never overwritten: they are left alone and reported as skipped.",
        epilog="exit codes: 0 files written, or all of them already there; 2 a file could not be written "
        "(the reason is printed).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=cmd_init)


def cmd_init(args) -> int:
    print(f"hardening init: starter files in {Path.cwd()}")
    results = write_starter(".")
    width = max(len(r.status) for r in results)
    for r in results:
        print(f"  {r.status:<{width}}  {r.path}" + (f": {r.error}" if r.error else ""))
    if failed := [r.path for r in results if r.status == FAILED]:
        print(f"error: could not write {', '.join(failed)} (see above); nothing existing was changed",
              file=sys.stderr)
        return EXIT_USAGE
    if not any(r.status == WRITTEN for r in results):
        print("nothing to do: every starter file already exists (delete one to get a fresh copy)")
    print(NEXT_STEPS)
    return EXIT_OK
