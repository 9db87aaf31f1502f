"""The judge's verdict and a run's SLOs in the formats CI reads: console text, JUnit XML, Markdown, HTML.

- :func:`junit_xml`: one ``<testsuite>`` of SLOs (one test case per SLO of ``record.slo_results``: observed vs
  target with units and the SLO's origin; ``fail`` and ``no_data`` are failures) and one of regression checks
  (one test case per latency series and one for errors; a regression is a failure, an untested check or a
  missing baseline is skipped). GitHub, GitLab and Jenkins all show it.
- :func:`markdown_summary` (and :func:`append_step_summary` for ``$GITHUB_STEP_SUMMARY``).
- :func:`render_text` for the console and :func:`html_report` for a standalone page (no scripts, no network).

Every number goes through :mod:`hardening.analysis.units`: rates as percentages with enough digits
(``1.47% vs < 1%``), milliseconds with two decimals, p-values in scientific notation (``1.2e-04``).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hardening.analysis import units
from hardening.analysis.judge import NONE, OVERALL, SeriesResult, Verdict
from hardening.atomic import write_text
from hardening.record.model import RunRecord, SloResult, SloStatus

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass
class Case:
    """One check as a test case: ``status`` is ``pass``, ``fail`` or ``skip``."""

    suite: str
    name: str
    status: str
    message: str
    detail: str


# ---------------------------------------------------------------- the checks


def slo_text(s: SloResult) -> str:
    """``1.47% vs < 1%`` (observed vs target, units, digits enough to tell them apart)."""
    return units.slo_comparison(s.metric_type, s.aggregation, s.op, s.observed, s.target)


def slo_cases(record: RunRecord) -> list[Case]:
    out = []
    for s in record.slo_results:
        status = "pass" if s.status == SloStatus.PASS else "fail"
        word = {"pass": "met", "fail": "FAILED", "no_data": "NO DATA"}[str(s.status)]
        message = f"{s.key} {s.aggregation}: {slo_text(s)} ({word}; origin {s.origin})"
        detail = message + (f"\n{s.detail}" if s.detail else "")
        out.append(Case("slo", s.name, status, message, detail))
    return out


def _series_message(s: SeriesResult, v: Verdict) -> str:
    if not s.tested:
        return f"not tested: {s.note or 'no data'}"
    conf = f"{v.settings.confidence:.0%}"
    tol = units.pct(v.settings.tolerance, decimals=0)
    verdict = "REGRESSION" if s.regression else "ok"
    return (f"{verdict}: median {units.ms(s.median_ms)} vs {units.ms(s.baseline_median_ms)}; shift "
            f"{units.ms(s.shift_ms, sign=True)} ({units.pct(s.relative, sign=True)}), {conf} CI "
            f"{units.ms(s.ci_ms[0], sign=True)} to {units.ms(s.ci_ms[1], sign=True)}; tolerance +{tol} "
            f"({units.ms(s.margin_ms, sign=True)}); p={units.pvalue(s.p_value)}, p vs tolerance (Holm) "
            f"{units.pvalue(s.p_adjusted)}; n={s.n} vs {s.n_baseline}")


def _errors_message(v: Verdict) -> str:
    e = v.errors
    if not e.tested:
        return f"not tested: {e.note or 'no data'}"
    conf = f"{v.settings.confidence:.0%}"
    verdict = "REGRESSION" if e.regression else "ok"
    lo, hi = e.diff_ci or (None, None)
    return (f"{verdict}: {units.pct(e.rate)} ({e.failed}/{e.total}) vs {units.pct(e.baseline_rate)} "
            f"({e.baseline_failed}/{e.baseline_total}) failed; {units.pp(e.diff)}, {conf} CI {units.pp(lo)} to "
            f"{units.pp(hi)}; tolerance {units.pp(v.settings.error_tolerance)}; Fisher p={units.pvalue(e.p_value)}")


def regression_cases(v: Verdict) -> list[Case]:
    if v.baseline_mode == NONE:
        msg = f"no baseline: {v.reason}"
        return [Case("regression", "latency overall", "skip", msg, msg),
                Case("regression", "errors", "skip", msg, msg)]
    out = []
    for s in v.series:
        status = "skip" if not s.tested else "fail" if s.regression else "pass"
        msg = _series_message(s, v)
        out.append(Case("regression", f"latency {s.series}", status, msg, msg))
    e = v.errors
    msg = _errors_message(v)
    out.append(Case("regression", "errors", "skip" if not e.tested else "fail" if e.regression else "pass",
                    msg, msg))
    return out


def _baseline_text(v: Verdict) -> str:
    if v.baseline_mode == NONE:
        return f"no baseline: {v.reason}"
    n = len(v.baseline)
    return f"{v.baseline_mode} baseline of {n} run{'s' if n != 1 else ''}: {', '.join(v.baseline)}"


# ---------------------------------------------------------------- JUnit XML


def junit_xml(verdict: Verdict, record: RunRecord | None = None) -> str:
    """JUnit XML: suite ``slo`` (when ``record`` is given) and suite ``regression``."""
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    groups = []
    if record is not None:
        groups.append((f"SLOs of run {record.run_id}", "hardening.slo", slo_cases(record)))
    groups.append((f"regression vs baseline (run {verdict.run})", "hardening.regression", regression_cases(verdict)))
    root = ET.Element("testsuites", name="hardening")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for name, classname, cases in groups:
        fails = sum(c.status == "fail" for c in cases)
        skips = sum(c.status == "skip" for c in cases)
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(cases)), failures=str(fails),
                              errors="0", skipped=str(skips), time="0", timestamp=stamp)
        props = ET.SubElement(suite, "properties")
        for k, val in (("run", verdict.run), ("baseline", " ".join(verdict.baseline) or "none"),
                       ("baseline_mode", verdict.baseline_mode)):
            ET.SubElement(props, "property", name=k, value=val)
        for c in cases:
            tc = ET.SubElement(suite, "testcase", classname=classname, name=c.name, time="0")
            if c.status == "fail":
                ET.SubElement(tc, "failure", message=c.message, type=c.suite).text = c.detail
            elif c.status == "skip":
                ET.SubElement(tc, "skipped", message=c.message)
            ET.SubElement(tc, "system-out").text = c.detail
        totals["tests"] += len(cases)
        totals["failures"] += fails
        totals["skipped"] += skips
    for k, val in totals.items():
        root.set(k, str(val))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | os.PathLike[str], verdict: Verdict, record: RunRecord | None = None) -> Path:
    return write_text(path, junit_xml(verdict, record))


# ---------------------------------------------------------------- Markdown


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_ICON = {"pass": "✅ pass", "fail": "❌ FAIL", "skip": "➖ skipped"}


def markdown_summary(verdict: Verdict, record: RunRecord | None = None) -> str:
    """A Markdown summary: the verdict, the SLO table, the regression table, the baseline runs."""
    v = verdict
    lines = []
    run_status = f" · SLOs **{str(record.status).upper()}**" if record is not None else ""
    word = {"regression": "**REGRESSION**", "pass": "no regression", "no_baseline": "no baseline"}[v.status]
    lines += [f"### Load test `{v.run}`{run_status} · {word}", "", _md(v.headline), ""]
    if record is not None and record.slo_results:
        lines += ["| SLO | observed vs target | result | origin |", "| --- | --- | --- | --- |"]
        for s in record.slo_results:
            result = {"pass": "✅ met", "fail": "❌ FAILED", "no_data": "❌ no data"}[str(s.status)]
            lines.append(f"| `{_md(s.name)}` | {_md(slo_text(s))} | {result} | {s.origin} |")
        lines.append("")
    lines += [f"**Regression check** — {_md(_baseline_text(v))}", ""]
    if v.baseline_mode != NONE:
        conf = f"{v.settings.confidence:.0%}"
        lines += [f"| check | run | baseline | change | {conf} CI | p-value | p vs tolerance (Holm) | result |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for s in v.series:
            status = "skip" if not s.tested else "fail" if s.regression else "pass"
            if s.tested:
                lines.append(f"| latency {_md(s.series)} | {units.ms(s.median_ms)} | {units.ms(s.baseline_median_ms)} | "
                             f"{units.ms(s.shift_ms, sign=True)} ({units.pct(s.relative, sign=True)}) | "
                             f"{units.ms(s.ci_ms[0], sign=True)} … {units.ms(s.ci_ms[1], sign=True)} | "
                             f"{units.pvalue(s.p_value)} | {units.pvalue(s.p_adjusted)} | {_ICON[status]} |")
            else:
                lines.append(f"| latency {_md(s.series)} | n={s.n} | n={s.n_baseline} | {_md(s.note)} | | | | "
                             f"{_ICON[status]} |")
        e = v.errors
        if e.tested:
            status = "fail" if e.regression else "pass"
            lines.append(f"| errors | {units.pct(e.rate)} ({e.failed}/{e.total}) | {units.pct(e.baseline_rate)} "
                         f"({e.baseline_failed}/{e.baseline_total}) | {units.pp(e.diff)} | "
                         f"{units.pp(e.diff_ci[0])} … {units.pp(e.diff_ci[1])} | {units.pvalue(e.p_value)} (Fisher) "
                         f"| | {_ICON[status]} |")
        else:
            lines.append(f"| errors | | | {_md(e.note)} | | | | {_ICON['skip']} |")
        tol = units.pct(v.settings.tolerance, decimals=0)
        lines += ["", f"Latency regresses when the shift exceeds +{tol} of the baseline median "
                  f"(Holm over {sum(s.tested for s in v.series)} series, α={v.settings.alpha:g}); errors when "
                  f"Fisher's p ≤ α and the rise's lower bound exceeds {units.pp(v.settings.error_tolerance)}."]
    for x in v.excluded:
        lines.append(f"- left out of the baseline: `{x['run_id']}` — {_md(x['reason'])}")
    for w in v.warnings:
        lines.append(f"- warning: {_md(w)}")
    return "\n".join(lines).rstrip() + "\n"


def append_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append to the file named by ``$GITHUB_STEP_SUMMARY`` (when set); returns its path."""
    target = (os.environ if env is None else env).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


# ---------------------------------------------------------------- console


def render_text(verdict: Verdict, record: RunRecord | None = None) -> str:
    """What ``hardening compare`` prints."""
    v = verdict
    out = []
    who = f" (environment {v.environment}, profile {v.profile}" + (
        f", script sha256 {v.script_sha256[:12]})" if v.script_sha256 else ")")
    out.append(f"run       {v.run}{who}")
    out.append(f"baseline  {_baseline_text(v)}")
    for x in v.excluded:
        out.append(f"          left out {x['run_id']}: {x['reason']}")
    if v.baseline_mode != NONE:
        o = v.overall
        out.append(f"latency   {_series_message(o, v)}")
        others = [s for s in v.series if s.kind != OVERALL]
        if others:
            conf = f"{v.settings.confidence:.0%}"
            out.append(f"  {'series':34} {'n run/base':>11} {'run ms':>9} {'base ms':>9} {'shift ms':>9} "
                       f"{'rel':>8} {conf + ' CI ms':>19} {'p':>8} {'p tol,Holm':>10}  result")
            for s in v.series:
                if not s.tested:
                    out.append(f"  {s.series[:34]:34} {f'{s.n}/{s.n_baseline}':>11}  {s.note}")
                    continue
                ci = f"{units.num_ms(s.ci_ms[0], True)} {units.num_ms(s.ci_ms[1], True)}"
                out.append(f"  {s.series[:34]:34} {f'{s.n}/{s.n_baseline}':>11} {units.num_ms(s.median_ms):>9} "
                           f"{units.num_ms(s.baseline_median_ms):>9} {units.num_ms(s.shift_ms, True):>9} "
                           f"{units.pct(s.relative, sign=True):>8} {ci:>19} {units.pvalue(s.p_value):>8} "
                           f"{units.pvalue(s.p_adjusted):>10}  {s.classification}")
        out.append(f"errors    {_errors_message(v)}")
    if record is not None and record.slo_results:
        failed = [s for s in record.slo_results if s.status != SloStatus.PASS]
        out.append(f"SLOs      {len(record.slo_results) - len(failed)}/{len(record.slo_results)} met"
                   + "".join(f"; {s.name}: {slo_text(s)}" for s in failed))
    for w in v.warnings:
        out.append(f"warning   {w}")
    what = [w for w, bad in (("latency", v.latency_regression), ("errors", v.errors.regression)) if bad]
    final = {"regression": f"REGRESSION ({', '.join(what)})", "pass": "no regression",
             "no_baseline": "no baseline: nothing to compare with"}[v.status]
    out.append(f"verdict   {final} (exit {v.exit_code})")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- HTML


def html_report(verdict: Verdict, record: RunRecord | None = None) -> str:
    """A standalone page (inline CSS, no scripts, every string escaped)."""
    v = verdict
    esc = html.escape
    color = {"regression": "#b00020", "pass": "#1b7f3b", "no_baseline": "#555"}[v.status]

    def table(head: list[str], rows: list[list[str]]) -> str:
        th = "".join(f"<th>{esc(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    parts = [f"<h1>Run {esc(v.run)}</h1>",
             f'<p class="verdict" style="color:{color}">{esc(v.headline)}</p>',
             f"<p>{esc(_baseline_text(v))}</p>"]
    if record is not None and record.slo_results:
        parts.append("<h2>SLOs</h2>" + table(["SLO", "observed vs target", "result", "origin"],
                                             [[s.name, slo_text(s), str(s.status), str(s.origin)]
                                              for s in record.slo_results]))
    cases = regression_cases(v)
    parts.append("<h2>Regression checks</h2>" + table(["check", "result", "details"],
                                                       [[c.name, c.status, c.message] for c in cases]))
    for x in v.excluded:
        parts.append(f"<p>left out of the baseline: {esc(x['run_id'])} ({esc(x['reason'])})</p>")
    for w in v.warnings:
        parts.append(f"<p>warning: {esc(w)}</p>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
             ".verdict{font-size:1.2em;font-weight:600}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>hardening compare '
            f"{esc(v.run)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


def write_html(path: str | os.PathLike[str], verdict: Verdict, record: RunRecord | None = None) -> Path:
    return write_text(path, html_report(verdict, record))
