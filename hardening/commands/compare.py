"""``hardening compare`` (judge a run against its baseline) and ``hardening baseline pin|unpin|list``."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from hardening.errors import EXIT_OK

DEFAULT_HISTORY = Path("data/runs")


def _settings_args(p: argparse.ArgumentParser) -> None:
    from hardening.analysis.judge_settings import JudgeSettings

    d = JudgeSettings()
    p.add_argument("--pool-size", type=int, default=d.pool_size, metavar="K",
                   help=f"passing runs in a pooled baseline (default {d.pool_size})")
    p.add_argument("--tolerance", type=float, default=d.tolerance,
                   help=f"latency: a regression needs the shift above this share of the baseline median "
                        f"(default {d.tolerance:g} = {d.tolerance * 100:g}%%)")
    p.add_argument("--error-tolerance", type=float, default=d.error_tolerance,
                   help=f"errors: the rise's lower bound must exceed this rate (default {d.error_tolerance:g} "
                        f"= {d.error_tolerance * 100:g} percentage points)")
    p.add_argument("--confidence", type=float, default=d.confidence,
                   help=f"confidence of the intervals; tests run one-sided at (1 - confidence)/2 "
                        f"(default {d.confidence:g})")
    p.add_argument("--min-samples", type=int, default=d.min_samples,
                   help=f"samples per side for a latency series to be tested (default {d.min_samples})")


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="judge a run against its baseline (latency shift and error counts); exit 1 on a regression",
        description=textwrap.fill(
            "Compare a run with its baseline: by default the pinned baseline of its environment, profile and "
            "script content, else the last --pool-size passing runs of them (runs flagged as regressions left "
            "out). Latency: Mann-Whitney U with the Hodges-Lehmann shift and interval on raw request durations, "
            "overall, per scenario and per request name (Holm-adjusted). Errors: Fisher's exact test on request "
            "counts with a Newcombe interval. Method and JSON contract: docs/judge.md.", 100),
        epilog="exit codes: 0 no regression (also: no baseline to compare with); 1 a latency or error regression; "
        "2 unknown run or baseline, unreadable record, bad option.\n"
        "When $GITHUB_STEP_SUMMARY is set, a Markdown summary is appended to it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run folder, run id in --history, or 'latest'")
    p.add_argument("--history", type=Path, default=None,
                   help="folder of run records (default: the run folder's parent, or data/runs for a run id)")
    p.add_argument("--baseline", default="auto", metavar="RUN|auto|pooled",
                   help="auto (default): the pin if there is one, else pooled; pooled: ignore pins; or a run "
                        "folder / run id")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON (docs/judge.md) instead of text")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write a standalone HTML page")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML (SLOs + regression checks)")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown summary")
    _settings_args(p)
    p.set_defaults(func=cmd_compare)

    b = sub.add_parser(
        "baseline", help="pin, unpin or list pinned baselines",
        description="A pinned baseline replaces the pooled one for every run of the same environment, profile "
        "and script content. Pins live in <history>/.baseline-pin.json.",
        epilog="exit codes: 0 done; 2 unknown run, unreadable pin file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bsub = b.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    for name, helptext in (("pin", "pin RUN as the baseline of its environment, profile and script content"),
                           ("unpin", "remove the pin of RUN's environment, profile and script content")):
        q = bsub.add_parser(name, help=helptext, description=helptext)
        q.add_argument("run", help="run folder or run id in --history")
        q.add_argument("--history", type=Path, default=None,
                       help="folder of run records (default: the run folder's parent, or data/runs)")
        q.set_defaults(func=cmd_pin if name == "pin" else cmd_unpin)
    q = bsub.add_parser("list", help="list the pins of a history folder")
    q.add_argument("--history", type=Path, default=DEFAULT_HISTORY, help="folder of run records (default data/runs)")
    q.set_defaults(func=cmd_list)


def _locate(run: str, history: Path | None) -> tuple[Path, Path]:
    """(run folder, history folder) from the command line."""
    from hardening.analysis.judge import resolve_run
    from hardening.record.reader import latest_run_dir

    if run == "latest":
        path = latest_run_dir(history or DEFAULT_HISTORY)
    else:
        path = resolve_run(run, history or DEFAULT_HISTORY)
    return path, history if history is not None else path.parent


def cmd_compare(args) -> int:
    from hardening.analysis import ci_outputs
    from hardening.analysis.judge import JudgeSettings, judge
    from hardening.errors import ConfigError
    from hardening.record.reader import read_record

    settings = JudgeSettings(pool_size=args.pool_size, tolerance=args.tolerance, confidence=args.confidence,
                             min_samples=args.min_samples, error_tolerance=args.error_tolerance).validate()
    run_path, history = _locate(args.run, args.history)
    if not history.is_dir():
        raise ConfigError(f"history folder {history} does not exist; pass --history with a folder of run records")
    verdict = judge(run_path, history, args.baseline, settings)
    record = read_record(run_path)
    for path, writer in ((args.junit, ci_outputs.write_junit), (args.html, ci_outputs.write_html)):
        if path is not None:
            _write(path, lambda p=path, w=writer: w(p, verdict, record))
    markdown = ci_outputs.markdown_summary(verdict, record)
    if args.markdown is not None:
        from hardening.atomic import write_text

        _write(args.markdown, lambda: write_text(args.markdown, markdown))
    try:
        ci_outputs.append_step_summary(markdown)
    except OSError as exc:
        print(f"warning: cannot append to $GITHUB_STEP_SUMMARY: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(ci_outputs.render_text(verdict, record))
    return verdict.exit_code


def _write(path: Path, write) -> None:
    from hardening.errors import ConfigError

    try:
        write()
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_pin(args) -> int:
    from hardening.analysis.judge import pin_baseline, pins_path

    run_path, history = _locate(args.run, args.history)
    pin = pin_baseline(history, run_path)
    script = pin["script_sha256"][:12] if pin["script_sha256"] else pin["script"]
    print(f"pinned {pin['run_id']} as the baseline of environment {pin['environment']!r}, profile "
          f"{pin['profile']!r}, script {script} ({pins_path(history)})")
    return EXIT_OK


def cmd_unpin(args) -> int:
    from hardening.analysis.judge import unpin_baseline

    run_path, history = _locate(args.run, args.history)
    removed = unpin_baseline(history, run_path)
    if removed:
        print(f"unpinned {', '.join(p['run_id'] for p in removed)}: the pooled baseline applies again")
    else:
        print("no pin for this environment, profile and script content")
    return EXIT_OK


def cmd_list(args) -> int:
    from hardening.analysis.judge import read_pins

    pins = read_pins(args.history)
    if not pins:
        print(f"no pinned baselines in {args.history}")
    for p in pins:
        script = (p.get("script_sha256") or "")[:12] or p.get("script")
        print(f"{p['run_id']}  environment={p.get('environment')} profile={p.get('profile')} script={script} "
              f"pinned {p.get('pinned_at')} by {p.get('pinned_by')}")
    return EXIT_OK
