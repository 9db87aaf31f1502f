"""The ``hardening`` command line: a thin layer over the library.

Each concern registers its own subcommands from ``hardening/commands/<concern>.py`` through
``register(subparsers)``; a handler takes the parsed args and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from hardening import __version__
from hardening.errors import EXIT_INFRA, EXIT_INTERRUPTED, EXIT_USAGE, HardeningError
from hardening.masking import mask

COMMAND_MODULES = ("loadtest", "redis", "report", "deploy", "init", "compare", "k6_operator", "imports")

EPILOG = """exit codes:
  0    success (SLOs met; or --warn-only)
  1    a gate failed: SLO failed, verification failed, deploy rolled back
  2    usage or configuration error (bad SLO expression, missing file, bad flag)
  3    infrastructure error (target/Redis unreachable, k6 missing or crashed;
       also an unexpected internal error: HARDENING_DEBUG=1 shows its traceback)
  130  interrupted (Ctrl-C); partial results are kept and marked interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hardening",
        description="Harden CI/CD pipelines with evidence: k6 SLO gates, Redis observability, "
        "run records, HTML reports, safe deploys.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hardening {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"hardening.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except HardeningError as exc:
        print(f"error: {mask(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug of ours: say so plainly; the traceback only on request
        if os.environ.get("HARDENING_DEBUG"):
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {mask(str(exc))}\n"
              "This is a bug in hardening; rerun with HARDENING_DEBUG=1 for the traceback and report it.",
              file=sys.stderr)
        return EXIT_INFRA


if __name__ == "__main__":
    sys.exit(main())
