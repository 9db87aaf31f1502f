"""Produce the shipped sample history (data/sample/runs/) with the real tool.

Each run is a real ``hardening demo --profile quick`` (embedded Redis + demo service + k6, ~10 s) with
fault knobs that make the history worth looking at:
- most runs healthy; two runs with 5% injected errors (fail http_req_failed rate<0.01);
- a latency regression partway: +40 ms from run 14 on, one run at +900 ms (fails p95), and the newest
  run at +80 ms (passes its SLOs, yet "p95 +X% vs baseline, significant");
- branches (GITHUB_REF_NAME) main / pinithi / feature-x and environments staging / local for the filters.
Raw samples (samples.parquet) are dropped except for the newest ``--keep-samples`` runs: reports use
per_second.parquet. The whole folder stays far below 20 MB.

Usage (from the project root):  .venv/bin/python data/make_sample_history.py [--runs 24] [--replace]
Without --replace new runs are added beside existing ones; with it the old sample is replaced only after
every new run succeeded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "runs"


def plan(n: int) -> list[dict[str, str]]:
    """Fault knobs, environment and branch per run (index 0 = oldest)."""
    runs = []
    for i in range(n):
        latency = 40 if i >= n * 14 // 24 else 0  # the regression partway (a change point)
        if i == n - 3:
            latency = 900  # fails p95<800
        if i == n - 1:
            latency = 80  # newest run: passes its SLOs but is significantly slower than its baseline
        error_rate = 0.05 if i in (n * 5 // 24, n * 11 // 24) else 0.0
        env, branch = "staging", "main"
        if i % 6 == 4:
            env, branch = "local", "feature-x"
        elif i % 6 == 2:
            branch = "pinithi"
        runs.append({"latency": str(latency), "error_rate": str(error_rate), "env": env, "branch": branch})
    return runs


def run_one(knobs: dict[str, str], out: Path) -> int:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # always the embedded Redis
    env.update({"GITHUB_REF_NAME": knobs["branch"], "GITHUB_ACTOR": "sample-bot"})
    cmd = [sys.executable, "-m", "hardening", "demo", "--profile", "quick", "--no-report", "--no-progress",
           "--out", str(out), "--env-name", knobs["env"], "--fault-latency-ms", knobs["latency"],
           "--fault-error-rate", knobs["error_rate"]]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1):  # 1 = SLO failed, which some sample runs are meant to do
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-3000:])
    return proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=24, help="number of runs (default 24, at least 20 recommended)")
    ap.add_argument("--keep-samples", type=int, default=3, help="newest runs that keep samples.parquet")
    ap.add_argument("--replace", action="store_true", help="replace the existing sample history")
    args = ap.parse_args()

    staging = SAMPLE.parent / ".runs-new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for i, knobs in enumerate(plan(args.runs), 1):
        start = time.perf_counter()
        rc = run_one(knobs, staging)
        print(f"[{i}/{args.runs}] env={knobs['env']} branch={knobs['branch']} latency+{knobs['latency']}ms "
              f"errors={knobs['error_rate']} -> exit {rc} ({time.perf_counter() - start:.1f} s)", flush=True)
        if rc not in (0, 1):
            print(f"run {i} failed (exit {rc}); sample history left unchanged; partial runs in {staging}",
                  file=sys.stderr)
            return rc
    new_runs = sorted(p for p in staging.iterdir() if (p / "run.json").is_file())
    for run in new_runs[: max(0, len(new_runs) - args.keep_samples)]:
        (run / "samples.parquet").unlink(missing_ok=True)
    for run in new_runs:
        (run / "k6-raw.json").unlink(missing_ok=True)
    if args.replace and SAMPLE.exists():
        old = SAMPLE.parent / ".runs-old"
        shutil.rmtree(old, ignore_errors=True)
        SAMPLE.rename(old)
        staging.rename(SAMPLE)
        shutil.rmtree(old)
    else:
        SAMPLE.mkdir(parents=True, exist_ok=True)
        for run in new_runs:
            run.rename(SAMPLE / run.name)
        shutil.rmtree(staging)
    size = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    print(f"sample history: {len(list(SAMPLE.iterdir()))} runs, {size / 1e6:.1f} MB in {SAMPLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
