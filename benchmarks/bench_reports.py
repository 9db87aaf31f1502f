"""Benchmark: the whole report set of one run + a 1,000-run history, against the naive way; 10,000 records.

- fast: ``hardening.reports.build.build_reports`` (in-process papermill, 2 notebooks at a time, one reused
  HTMLExporter with the offline template);
- naive: per notebook, sequentially, the ``papermill`` CLI then the ``jupyter nbconvert --to html --no-input`` CLI;
- loading: ``hardening.record.reader.load_runs`` (orjson, run.json only) on 10,000 records vs ``json`` +
  ``pandas.json_normalize`` on the same files.
Targets: fast ≥ 2× the naive way and < 10 s on 2 cores; 10,000 records < 2 s; every HTML < 2 MB.

Run: .venv/bin/python benchmarks/bench_reports.py  (uses data/sample/runs; prints figures, asserts nothing)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from hardening.record.layout import RunLayout

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "runs"
SAMPLE_LEDGER = ROOT / "data" / "sample" / "deployments" / "ledger.jsonl"
BIN = Path(sys.executable).parent
NOTEBOOKS = ROOT / "hardening" / "reports" / "notebooks"  # the package data (notebooks/ holds symlinks)
sys.path.insert(0, str(ROOT / "tests"))


def sample_runs(tmp: Path) -> list[Path]:
    if SAMPLE.is_dir() and any(SAMPLE.iterdir()):
        return sorted(p for p in SAMPLE.iterdir() if RunLayout(p).run_json.is_file())
    from run_factory import make_history  # no sample shipped yet: constructed records

    return make_history(tmp / "constructed", n=24)


def clone_history(src: list[Path], dest: Path, n: int, with_parts: bool) -> list[Path]:
    """``n`` run folders cycling over ``src`` with new ids and start times (hard links for the big parts)."""
    dest.mkdir(parents=True)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        s = RunLayout(src[i % len(src)])
        rec = json.loads(s.run_json.read_text())
        start = t0 + dt.timedelta(hours=i)
        rec["run_id"] = f"{start:%Y%m%dT%H%M%SZ}-bench00-{i:04x}"
        rec["started_at"] = start.isoformat()
        d = RunLayout(dest / rec["run_id"])
        d.root.mkdir()
        d.run_json.write_text(json.dumps(rec))
        if with_parts:
            for part in ("per_second", "k6_summary"):
                if getattr(s, part).exists():
                    os.link(getattr(s, part), getattr(d, part))
            if s.redis.comparison.exists():
                d.redis.folder.mkdir()
                os.link(s.redis.comparison, d.redis.comparison)
        out.append(d.root)
    return out


def ledger_path(tmp: Path) -> Path:
    if SAMPLE_LEDGER.is_file():
        return SAMPLE_LEDGER
    from run_factory import make_ledger

    return make_ledger(tmp / "ledger.jsonl", n=40)


def fast(run: Path, hist: Path, out: Path, ledger: Path) -> tuple[float, dict[str, int]]:
    from hardening.reports.build import build_reports

    start = time.perf_counter()
    results = build_reports(run, hist, out, ledger, workers=2, progress=lambda _line: None)
    return time.perf_counter() - start, {r.html.name: r.html_bytes for r in results}


def naive(run: Path, hist: Path, out: Path, ledger: Path) -> float:
    out.mkdir(parents=True)
    jobs = {
        "run_report": ["-p", "run_dir", str(run), "-p", "history_dir", str(hist)],
        "redis_report": ["-p", "run_dir", str(run)],
        "slo_history": ["-p", "history_dir", str(hist)],
        "deployments": ["-p", "ledger_path", str(ledger)],
    }
    start = time.perf_counter()
    for name, params in jobs.items():
        executed = out / f"{name}.ipynb"
        subprocess.run([str(BIN / "papermill"), str(NOTEBOOKS / f"{name}.ipynb"), str(executed),
                        "-k", "python3", "--no-progress-bar", *params], check=True, capture_output=True)
        subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)],
                       check=True, capture_output=True)
    return time.perf_counter() - start


def naive_load(root: Path) -> pd.DataFrame:
    rows = [json.loads(p.read_text()) for p in sorted(root.glob(f"*/{RunLayout.RUN_JSON}"))]
    return pd.json_normalize(rows)


def main() -> None:
    from hardening.record.reader import load_runs

    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    try:
        src = sample_runs(tmp)
        hist = tmp / "history"
        clone_history(src, hist, 999, with_parts=True)
        this_run = hist / src[-1].name  # the newest real run, complete (samples, redis/), is "this run"
        shutil.copytree(src[-1], this_run)
        ledger = ledger_path(tmp)
        print(f"history: {len(list(hist.iterdir()))} runs; this run: {this_run.name}; ledger: {ledger}")

        t_fast, sizes = fast(this_run, hist, tmp / "fast", ledger)
        t_naive = naive(this_run, hist, tmp / "naive", ledger)
        print(f"report set, fast (in-process papermill, 2 workers, reused exporter): {t_fast:6.2f} s")
        print(f"report set, naive (papermill CLI + jupyter nbconvert CLI, sequential): {t_naive:6.2f} s")
        print(f"speed-up: {t_naive / t_fast:.2f}x  (target >= 2x, fast < 10 s)")
        for name, size in sorted(sizes.items()):
            print(f"  {name:20s} {size / 1024:8.0f} KB  (target < 2048 KB)")

        big = tmp / "ten-thousand"
        clone_history(src, big, 10_000, with_parts=False)
        start = time.perf_counter()
        df = load_runs(big)
        t_load = time.perf_counter() - start
        start = time.perf_counter()
        naive_load(big)
        t_naive_load = time.perf_counter() - start
        print(f"load_runs on {len(df):,} records: {t_load:.2f} s (target < 2 s); json + json_normalize: "
              f"{t_naive_load:.2f} s; ratio {t_naive_load / t_load:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
