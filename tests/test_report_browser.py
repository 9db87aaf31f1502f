"""The reports in real headless Chromium (Debian ``chromium``), opened from file:// with the network blocked,
and the numbers they state.

Two report sets are built with ``hardening report``, once for this module: a run with a 16-run history,
Redis and a ledger, and a first run (no earlier run, no Redis).

- On a desktop screen every page renders offline: no request leaves the machine, no console error, and a
  planted ``<script>`` is shown as text, never run.
- At 390 px wide (a phone) the verdict and every result cell (SLO rows, index key numbers) lie inside the
  viewport, the page itself does not scroll sideways (wide tables scroll in their own box), figures fit.

Screenshots go to ``test-artifacts/report-*.png`` and ``test-artifacts/layout-390-*.png``.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, hardening_cmd, subprocess_env
from run_factory import EVIL, make_history, make_ledger, make_run

from hardening.record.model import CustomMetric
from hardening.record.reader import load_run, read_record
from hardening.reports import build, run_report
from hardening.reports.style import duration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = 390
TOLERANCE = 2  # px: sub-pixel rounding
TICK = re.compile(r"\d{4}-\d{2}-\d{2}\n\d{2}:\d{2}")
SCI = re.compile(r"(< )?\d\.\de[+-]\d{2,3}")

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium")


def report(run: Path, out: Path, *args: str, cwd: Path) -> Path:
    proc = subprocess.run([*hardening_cmd(), "report", "--run", str(run), "--out", str(out), *args],
                          capture_output=True, text=True, env=subprocess_env(), timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("reports")
    first = make_run(base / "first", 0)  # no earlier run, Redis not observed
    runs = make_history(base / "runs", n=16, regression_at=12, fail_every=5)  # the 3 newest observed Redis
    ledger = make_ledger(base / "ledger.jsonl")
    return {"history": report(runs[-1], base / "out-history", "--history", str(base / "runs"), "--ledger",
                              str(ledger), cwd=base),
            "first": report(first, base / "out-first", cwd=base)}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


OFFLINE = {
    "index.html": "Verdict: PASS",
    "run_report.html": "Verdict: PASS",
    "redis_report.html": "Verdict: PASS",
    "slo_history.html": "SLO failed in",
    "deployments.html": "Change failure rate 25.00%",
}


@needs_chromium
@pytest.mark.parametrize("page_name", list(OFFLINE))
def test_report_renders_offline(built, browser, page_name):
    reports = built["history"]
    outside: list[str] = []
    errors: list[str] = []
    dialogs: list[str] = []
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto((reports / page_name).as_uri(), wait_until="load")
        text = page.inner_text("#verdict")
        body = page.inner_text("body")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{page_name.replace('.html', '')}.png"), full_page=True)
    finally:
        context.close()
    assert OFFLINE[page_name] in text
    assert outside == [], f"requests left the machine: {outside}"
    assert errors == [], f"console errors: {errors}"
    assert dialogs == [], "a planted <script> ran"
    if page_name in ("run_report.html", "redis_report.html"):
        assert EVIL in body  # shown as text, not executed
    if page_name == "run_report.html":
        assert "pooled baseline of" in body and "Per scenario" in body
    if page_name == "index.html":
        for link in OFFLINE:
            assert (reports / link).is_file()


@pytest.fixture(scope="module")
def phone(browser):
    context = browser.new_context(viewport={"width": PHONE, "height": 844}, device_scale_factor=1)
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
    try:
        yield context
    finally:
        context.close()


GEOMETRY = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, width: r.width,
                     text: e.innerText.slice(0, 80)}; };
  return {
    scrollWidth: document.scrollingElement.scrollWidth,
    verdict: [...document.querySelectorAll('#verdict')].map(box),
    results: [...document.querySelectorAll('.hz-result')].map(box),
    images: [...document.querySelectorAll('img')].map(box),
  };
}"""

PAGES = [("history", "index.html"), ("history", "run_report.html"), ("history", "redis_report.html"),
         ("history", "slo_history.html"), ("history", "deployments.html"), ("first", "index.html"),
         ("first", "run_report.html"), ("first", "slo_history.html")]


@needs_chromium
@pytest.mark.parametrize(("which", "page_name"), PAGES, ids=[f"{w}-{p}" for w, p in PAGES])
def test_page_is_readable_at_390px(built, phone, which, page_name):
    page = phone.new_page()
    try:
        page.goto((built[which] / page_name).as_uri(), wait_until="load")
        geo = page.evaluate(GEOMETRY)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"layout-390-{which}-{page_name.replace('.html', '')}.png"),
                        full_page=True)
    finally:
        page.close()
    assert geo["scrollWidth"] <= PHONE + TOLERANCE, f"the whole page scrolls sideways: {geo['scrollWidth']} px"
    assert len(geo["verdict"]) == 1, geo["verdict"]

    def inside(box: dict) -> bool:
        return box["width"] > 0 and box["left"] >= -TOLERANCE and box["right"] <= PHONE + TOLERANCE

    assert all(inside(b) for b in geo["verdict"]), geo["verdict"]
    if page_name in ("index.html", "run_report.html"):
        assert len([b for b in geo["results"] if "(slo-file)" in b["text"] or "PASS" in b["text"]
                    or "FAIL" in b["text"]]) >= 2, geo["results"]  # every SLO has a result shown
    off = [b for b in geo["results"] if not inside(b)]
    assert off == [], f"result cells outside the 390 px viewport: {off}"
    wide = [b for b in geo["images"] if not inside(b)]
    assert wide == [], f"figures wider than the screen: {wide}"


@needs_chromium
def test_index_shows_key_numbers_above_the_links(built, phone):
    page = phone.new_page()
    try:
        page.goto((built["history"] / "index.html").as_uri(), wait_until="load")
        key = page.inner_text("#key-numbers")
        order = page.evaluate("() => [document.querySelector('#key-numbers').getBoundingClientRect().top, "
                              "document.querySelector('#reports').getBoundingClientRect().top]")
    finally:
        page.close()
    assert order[0] < order[1], "key numbers must come before the links"
    assert "http_req_duration p(95): 300.00 ms vs < 800 ms ✓ (slo-file)" in key
    assert "http_req_failed rate: 0.10% vs < 1% ✓ (slo-file)" in key
    assert "Throughput: 50.00 req/s" in key and "Error rate: 0.10%" in key
    assert "Baseline: no regression" in key  # the judge's headline, from the run report's side file


def test_index_numbers_are_honest(tmp_path):
    """Rates with digits enough to compare with their target, a unit on every value, the mark and the origin."""
    failing = make_run(tmp_path / "runs", 1, error_rate=0.0147, p95=950.0)
    close = make_run(tmp_path / "runs", 2, error_rate=0.00995)
    for run, expected in ((failing, ["http_req_failed rate: 1.47% vs < 1% ✗ (slo-file)",
                                     "http_req_duration p(95): 950.00 ms vs < 800 ms ✗ (slo-file)"]),
                          (close, ["http_req_failed rate: 0.995% vs < 1% ✓ (slo-file)"])):
        record = read_record(run)
        lines = [run_report.slo_line(s) for s in record.slo_results]
        assert all(e in lines for e in expected), lines
        (tmp_path / run.name).mkdir()
        index = build.write_index(tmp_path / run.name, record, [], run).read_text()
        assert all(e.replace("<", "&lt;") in index for e in expected)
    status, sentence = run_report.verdict_text(read_record(failing))
    assert status == "FAIL"
    assert "observed 1.47%, 0.47 pp beyond target < 1%" in sentence
    assert "observed 950.00 ms, 150.00 ms beyond target < 800 ms" in sentence
    assert [duration(s) for s in (0.35, 7.9, 45, 492, 7500)] == ["0.35 s", "7.9 s", "45 s", "8 min 12 s",
                                                                 "2 h 5 min"]


def test_history_axes_are_start_times(built):
    summary = json.loads((built["history"] / "slo_history.summary.json").read_text())
    ticks = summary["x_ticks"]
    assert set(ticks) == {"burn", "slo_trends", "latency", "redis"}
    for name, labels in ticks.items():
        assert labels and all(TICK.fullmatch(t) for t in labels), (name, labels)
    assert ticks["burn"][0] == "2026-11-01\n08:00" and ticks["burn"][-1] == "2026-11-01\n23:00"


def test_first_run_no_redis_page_and_history_starts_here(built):
    out = built["first"]
    assert not (out / "redis_report.html").exists() and not (out / "redis_report.summary.json").exists()
    index = (out / "index.html").read_text()
    assert "redis_report" not in index and "No Redis page: Redis was not observed in this run." in index
    assert "History: starts here (1 run so far)" in index
    history = (out / "slo_history.html").read_text()
    assert "History starts here" in history and 'data-state="history-starts-here"' in history
    assert "<img" not in history  # text, no empty axes
    assert json.loads((out / "slo_history.summary.json").read_text())["first_run"] is True
    run_page = (out / "run_report.html").read_text()
    assert "History starts here: no earlier passing run" in run_page
    assert (built["history"] / "redis_report.html").is_file()  # a run that observed Redis has its page


def text_of(page: Path) -> str:
    """The page's markup with no-break spaces (a value and its unit kept on one line) read as spaces."""
    return page.read_text().replace("\xa0", " ")


def test_pages_state_units(built):
    out = built["history"]
    deployments = text_of(out / "deployments.html")
    assert "all environments: production, staging" in deployments  # the banner names every environment
    assert "2 h 2 min" in deployments and "25.00%" in deployments
    history = text_of(out / "slo_history.html")
    cells = re.findall(r"<td>([^<]*)</td>", history.split("Change points (split-merge", 1)[1].split("</table>")[0])
    p_values = [c for c in cells if "e-" in c or "e+" in c or c.strip() == "0"]
    assert p_values and all(SCI.fullmatch(c.replace("&lt;", "<")) for c in p_values), cells
    run_page = text_of(out / "run_report.html")
    for text in ("300.00 ms", "50.00 req/s", "0.10%", "&lt; 800 ms", "100.00%"):
        assert text in run_page, text


def test_counter_table_lists_counters_rates_and_gauges_never_trends(tmp_path):
    record = read_record(make_run(tmp_path / "runs", 1))
    record.metrics.custom.update({"my_rate": CustomMetric("rate", {"rate": 0.25, "value": 0.25}),
                                  "my_gauge": CustomMetric("gauge", {"value": 7.0, "min": 1.0, "max": 9.0})})
    frame = run_report.counter_frame(record)
    kinds = dict(zip(frame["metric"], frame["kind"], strict=True))
    assert kinds == {"my_gauge": "gauge", "my_rate": "rate", "payments_failed": "counter",
                     "payments_successful": "counter"}  # the Trends payment_duration/queue_duration are not here
    shown = run_report.counter_shown(record).set_index("metric")
    assert shown.loc["my_rate", "value"] == "25.00%" and shown.loc["payments_successful", "per second"] == "5.00/s"


def test_one_second_scenario_is_drawn_as_a_marker(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    per_second = load_run(make_run(tmp_path / "runs", 1, seconds=1)).per_second
    fig = run_report.scenario_figure(per_second)
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert lines and all(len(ln.get_xdata()) == 1 for ln in lines)
    assert all(ln.get_marker() not in (None, "None", "", " ") for ln in lines)  # a single point is visible


def test_index_baseline_falls_back_to_the_stored_verdict(tmp_path):
    """Without a history the run report cannot judge; the index shows the verdict the load test stored."""
    from hardening.analysis.judge import judge_run, write_verdict

    runs = make_history(tmp_path / "runs", n=6, regression_at=None, fail_every=None, redis_last=False)
    verdict = judge_run(runs[-1])
    write_verdict(runs[-1], verdict)
    summary = run_report.RunReportSummary("x", "PASS", "all 2 SLOs met", [],
                                          run_report.BaselineSummary(None, run_report.NO_HISTORY))
    job = build.ReportJob(build.RUN_REPORT, build.notebook_path("run_report"), {}, tmp_path / "s.json")
    result = build.ReportResult(job, tmp_path / "run_report.html", tmp_path / "run_report.ipynb", summary)
    line = build.baseline_line(runs[-1], [result])
    assert line is not None and line.text == verdict.headline and line.regression is False
    assert "stored verdict" in line.source
    index = build.write_index(tmp_path, read_record(runs[-1]), [result], runs[-1]).read_text()
    assert f"Baseline: {verdict.headline}".replace("'", "&#x27;") in index
