"""Real headless Chromium (Debian ``chromium``) opens the built reports from file:// with the network blocked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, hardening_cmd
from run_factory import EVIL, make_history, make_ledger

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium: apt-get install -y chromium")


@pytest.fixture(scope="module")
def reports(tmp_path_factory, cli_env_module) -> Path:
    base = tmp_path_factory.mktemp("browser")
    runs = make_history(base / "runs", n=16, regression_at=12, fail_every=5)
    make_ledger(base / "ledger.jsonl")
    out = base / "reports"
    proc = subprocess.run([*hardening_cmd(), "report", "--run", str(runs[-1]), "--history", str(base / "runs"),
                           "--out", str(out), "--ledger", str(base / "ledger.jsonl")],
                          capture_output=True, text=True, env=cli_env_module, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def cli_env_module():
    import os
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


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
