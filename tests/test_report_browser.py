"""Real headless Chromium (Debian ``chromium``) opens the built reports from file:// with the network blocked."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT
from run_factory import EVIL

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium: apt-get install -y chromium")


@pytest.fixture(scope="module")
def reports(history_reports) -> Path:
    return history_reports


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


PAGES = {
    "index.html": "Verdict: PASS",
    "run_report.html": "Verdict: PASS",
    "redis_report.html": "Verdict: PASS",
    "slo_history.html": "SLO failed in",
    "deployments.html": "Change failure rate 25.00%",
}


@pytest.mark.parametrize("page_name", list(PAGES))
def test_report_renders_offline(reports, browser, page_name):
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
    assert PAGES[page_name] in text
    assert outside == [], f"requests left the machine: {outside}"
    assert errors == [], f"console errors: {errors}"
    assert dialogs == [], "a planted <script> ran"
    if page_name in ("run_report.html", "redis_report.html"):
        assert EVIL in body  # shown as text, not executed
    if page_name == "run_report.html":
        assert "pooled baseline of" in body and "Per scenario" in body
    if page_name == "index.html":
        links = [a for a in PAGES if a != "index.html"]
        for link in links:
            assert (reports / link).is_file()
