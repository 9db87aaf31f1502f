"""Make the judge corpus: real k6 runs against a loopback server with controlled latency.

    .venv/bin/python tests/make_judge_corpus.py            # writes tests/data/judge_corpus/runs/ (~1.5 min)

Each run is the real k6 (``.venv/bin/k6``) running ``tests/data/judge_corpus/judge-corpus.js`` (two scenarios,
three request names, 900 requests) against a stdlib HTTP server on 127.0.0.1. The server sleeps a lognormal
time per request: each endpoint has its own stream of draws from ``numpy.random.default_rng([seed, endpoint])``,
taken in request order (request i of an endpoint always gets draw i), times the run's factor. Error runs answer
503 at once for a seeded choice of exactly ``error_rate`` × 900 request indices.

The record is written the way ``hardening loadtest`` writes one: ``RunRecordWriter``, ``ingest_k6_json`` for
``samples.parquet``, ``key_metrics`` of k6's ``--summary-export``, SLOs judged by the SLO engine on the summary
and on the samples. Only ``run.json``, ``k6-summary.json``, ``slo.json`` and ``samples.parquet`` are kept.
``corpus.json`` lists every run with what was done to it, in the order the runs were made (the started_at
order interleaves unchanged, shifted and error runs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardening.loadtest.samples import ingest_k6_json, load_samples  # noqa: E402
from hardening.loadtest.slo import evaluate_samples, evaluate_summary, overall_status, parse_slo  # noqa: E402
from hardening.record.model import GitInfo, K6Info, RunRecord, RunStatus, SloStatus, key_metrics  # noqa: E402
from hardening.record.writer import RunRecordWriter, new_run_id  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "judge_corpus"
SCRIPT = CORPUS / "judge-corpus.js"
SCRIPT_REL = "tests/data/judge_corpus/judge-corpus.js"
SLO = {"thresholds": {"http_req_duration": ["p(95)<75"], "http_req_failed": ["rate<0.01"]}}
K6 = Path(sys.executable).parent / "k6"
TREND_STATS = "avg,min,med,max,p(90),p(95),p(99),count"
TOTAL_REQUESTS = 900  # 300 browse iterations × 2 requests + 300 checkout iterations

# endpoint: (median ms, lognormal sigma)
ENDPOINTS = {"items": (30.0, 0.2), "item": (36.0, 0.2), "checkout": (45.0, 0.2)}


@dataclass
class Plan:
    kind: str  # unchanged | shift | errors | endpoint-shift
    factor: float = 1.0  # multiplies every latency
    endpoint_factor: dict[str, float] = field(default_factory=dict)  # multiplies one endpoint's latency
    error_rate: float = 0.0


PLANS = [
    Plan("unchanged"), Plan("unchanged"), Plan("unchanged"),
    Plan("shift", 1.10), Plan("shift", 1.10),  # two in a row: the second must not be judged against the first
    Plan("unchanged"),
    Plan("shift", 1.20),
    Plan("errors", error_rate=0.02),
    Plan("unchanged"),
    Plan("shift", 1.50),
    Plan("unchanged"),
    Plan("endpoint-shift", endpoint_factor={"checkout": 1.40}),
    Plan("unchanged"),
    Plan("errors", error_rate=0.02),
    Plan("unchanged"),
]


class Latency:
    """The server's behaviour for one run: seeded per-endpoint draws and a fixed set of failing requests."""

    def __init__(self, seed: int, plan: Plan, capacity: int = 4 * TOTAL_REQUESTS) -> None:
        self.draws = {}
        for i, (name, (median, sigma)) in enumerate(ENDPOINTS.items()):
            rng = np.random.default_rng([seed, i])
            factor = plan.factor * plan.endpoint_factor.get(name, 1.0)
            self.draws[name] = rng.lognormal(np.log(median), sigma, capacity) * factor / 1000.0
        n_err = round(plan.error_rate * TOTAL_REQUESTS)
        self.errors = set(np.random.default_rng([seed, 99]).permutation(TOTAL_REQUESTS)[:n_err].tolist())
        self.counts = dict.fromkeys(ENDPOINTS, 0)
        self.total = 0
        self.lock = threading.Lock()

    def next(self, endpoint: str) -> tuple[float, bool]:
        with self.lock:
            i, g = self.counts[endpoint], self.total
            self.counts[endpoint] += 1
            self.total += 1
        return float(self.draws[endpoint][i]), g in self.errors


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "judge-corpus/1"
    disable_nagle_algorithm = True  # headers and body are two writes: without it, delayed ACKs add ~40 ms

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self, endpoint: str | None) -> None:
        start = time.perf_counter()
        if endpoint is None:
            return self._send(404, b'{"error":"not found"}')
        delay, fail = self.server.latency.next(endpoint)
        if fail:
            return self._send(503, b'{"error":"overloaded"}')
        time.sleep(max(0.0, start + delay - time.perf_counter()))
        return self._send(200, b'{"ok":true,"items":[1,2,3]}')

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/api/items":
            self._answer("items")
        elif self.path.startswith("/api/items/"):
            self._answer("item")
        else:
            self._answer(None)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer("checkout" if self.path == "/api/checkout" else None)


def run_one(out: Path, index: int, plan: Plan, seed: int) -> tuple[str, RunRecord]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.latency = Latency(seed, plan)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    started = dt.datetime.now(dt.UTC)
    writer = RunRecordWriter(out, new_run_id("c0rpus0", started))
    files = writer.layout
    spec = parse_slo(SLO, "slo.json")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "k6-raw.json"
        cmd = [str(K6), "run", "--no-color", "--no-usage-report", "--quiet", "--summary-export",
               str(files.k6_summary), "--summary-trend-stats", TREND_STATS, "--out", f"json={raw}",
               "--env", f"BASE_URL={base_url}", str(SCRIPT)]
        env = {**os.environ, "K6_NO_USAGE_REPORT": "true"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        server.shutdown()
        server.server_close()
        if proc.returncode != 0:
            writer.discard()
            raise SystemExit(f"k6 exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        ingest_k6_json(raw, files.samples)
    finished = dt.datetime.now(dt.UTC)
    summary = json.loads(files.k6_summary.read_text())
    samples = load_samples(files.samples, metrics=sorted({o.metric for o in spec.objectives}))
    slo_results = evaluate_summary(spec, summary, samples["metric"].value_counts().to_dict())
    from_samples = evaluate_samples(spec, samples, duration_s=(finished - started).total_seconds())
    files.slo_file.write_text(json.dumps(SLO, indent=2) + "\n")
    status = RunStatus.PASS if overall_status(slo_results) == SloStatus.PASS else RunStatus.FAIL
    record = RunRecord(
        run_id=writer.run_id, status=status, started_at=started.isoformat(), finished_at=finished.isoformat(),
        duration_s=round((finished - started).total_seconds(), 3), environment="corpus", profile="judge",
        script=SCRIPT_REL, script_sha256=hashlib.sha256(SCRIPT.read_bytes()).hexdigest(), target=base_url,
        git=GitInfo(commit="c0rpus0" + "0" * 33, branch="judge-corpus", actor="make_judge_corpus"),
        k6=K6Info(version="v1.1.0", exit_code=proc.returncode, exit_meaning="ok"),
        slo=spec.to_dict(), slo_results=slo_results, slo_results_from_samples=from_samples,
        metrics=key_metrics(summary))
    writer.finalize(record)
    return writer.run_id, record


def main() -> int:
    runs = CORPUS / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    manifest = []
    for index, plan in enumerate(PLANS):
        seed = 1000 + index
        run_id, record = run_one(runs, index, plan, seed)
        p95 = (record.metrics.http_req_duration or {}).get("p(95)")
        print(f"{index:2d} {run_id} {plan.kind:15s} factor={plan.factor} {plan.endpoint_factor or ''} "
              f"errors={plan.error_rate} status={record.status} p95={p95:.2f} ms "
              f"error_rate={record.metrics.error_rate}", flush=True)
        manifest.append({"run_id": run_id, "index": index, "seed": seed, "kind": plan.kind, "factor": plan.factor,
                         "endpoint_factor": plan.endpoint_factor, "error_rate": plan.error_rate,
                         "status": str(record.status)})
        time.sleep(1.1)  # run ids carry the second: keep started_at strictly increasing
    doc = {"script": SCRIPT_REL, "endpoints": {k: {"median_ms": m, "sigma": s} for k, (m, s) in ENDPOINTS.items()},
           "requests_per_run": TOTAL_REQUESTS, "made_by": "tests/make_judge_corpus.py", "runs": manifest}
    (CORPUS / "corpus.json").write_text(json.dumps(doc, indent=2) + "\n")
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"corpus: {len(manifest)} runs, {size / 1e6:.2f} MB in {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
