"""Benchmark: streaming k6 JSON ingestion (hardening.loadtest.samples) vs the naive ``pandas.read_json(lines=True)``,
and vs the previous ingestion (the one before every tag was kept, read from git: ``--previous REV``).

Generates a k6-format NDJSON file (``--requests`` HTTP requests, 13 Point lines per request, tags as k6 1.1.0
writes them for a payments script with two scenarios; ``--custom-tags N`` adds N scenario-level tags to every
sample), then runs each contender in its own subprocess so each gets its own peak RSS and CPU time. The current
and the previous ingestion run ``--rounds`` times, alternating, and the medians are compared (wall time and CPU
time: on a busy machine the CPU time is the steadier figure). The naive side is only the ``read_json`` call (it
does not even flatten the nested ``data`` column or write anything), so the comparison favours it.

    .venv/bin/python benchmarks/bench_ingest.py                 # 200,000 requests (~2.6M lines, ~0.7 GB)
    .venv/bin/python benchmarks/bench_ingest.py --requests 20000 --skip-naive
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HOST = "http://127.0.0.1:8080"
# The last commit whose ingestion dropped every tag but the eight tag columns (the "before" of issue 9).
PREVIOUS_REV = "bbcdc55a0b9a293dcb5d95e946a9da832ec16145"
MAX_SLOWDOWN = 1.10  # keeping every tag may cost at most 10% over the previous ingestion

# One k6 iteration of a payments script: POST /api/payments then GET /api/payments/{id} (two requests,
# 26 Point lines = 13 per request). Field order, tag order and value formats copied from real k6 1.1.0 output.
_HTTP_METRICS = ("http_reqs", "http_req_duration", "http_req_blocked", "http_req_connecting",
                 "http_req_tls_handshaking", "http_req_sending", "http_req_waiting", "http_req_receiving",
                 "http_req_failed")
_METRIC_TYPES = {
    **{m: "trend" for m in _HTTP_METRICS}, "http_reqs": "counter", "http_req_failed": "rate", "checks": "rate",
    "payment_duration": "trend", "payments_successful": "counter", "payments_failed": "counter",
    "data_sent": "counter", "data_received": "counter", "iteration_duration": "trend", "iterations": "counter",
    "vus": "gauge", "vus_max": "gauge",
}


def _custom(custom_tags: int) -> str:
    """``N`` scenario-level tags as k6 writes them (``"tag_1":"value-1",...,``)."""
    return "".join(f'"tag_{k}":"value-{k}",' for k in range(1, custom_tags + 1))


def _http_tags(scenario: str, method: str, name: str, url: str, status: str, ok: bool, custom: str = "") -> str:
    error = "" if ok else f'"error_code":"1{status}",'
    return (f'{{{error}"expected_response":"{"true" if ok else "false"}","group":"::payments","method":"{method}",'
            f'"name":"{name}","proto":"HTTP/1.1","scenario":"{scenario}","status":"{status}",{custom}'
            f'"url":"{url}"}}')


def _point(metric: str, tags: str, value: str, when: str = "%(t)s") -> str:
    return f'{{"metric":"{metric}","type":"Point","data":{{"time":"{when}","value":{value},"tags":{tags}}}}}\n'


def _iteration_template(scenario: str, ok: bool, custom_tags: int = 0) -> str:
    """A %-format template for one iteration: times t1,t2,t3; values d0..d13, pay, sent, recv, iter; pid."""
    extra = _custom(custom_tags)
    post = _http_tags(scenario, "POST", f"{HOST}/api/payments", f"{HOST}/api/payments", "201" if ok else "500", ok,
                      extra)
    get = _http_tags(scenario, "GET", "GET /api/payments/:id", f"{HOST}/api/payments/pay-%(pid)s", "200", True,
                     extra)
    lines = []
    k = 0
    for tags, when in ((post, "%(t1)s"), (get, "%(t2)s")):
        for metric in _HTTP_METRICS:
            if metric == "http_reqs":
                value = "1"
            elif metric == "http_req_failed":
                value = "0" if tags is get or ok else "1"
            else:
                value = f"%(d{k})s"
                k += 1
            lines.append(_point(metric, tags, value, when))
    more = "," + extra[:-1] if extra else ""  # the custom tags after "scenario" (k6 sorts tag names)
    group = f'{{"group":"::payments","scenario":"{scenario}"{more}}}'
    check_ok = f'{{"check":"payment accepted","group":"::payments","scenario":"{scenario}"{more}}}'
    check_get = f'{{"check":"payment readable","group":"::payments","scenario":"{scenario}"{more}}}'
    lines += [
        _point("checks", check_ok, "1" if ok else "0", "%(t2)s"),
        _point("checks", check_get, "1", "%(t2)s"),
        _point("payment_duration", group, "%(pay)s", "%(t2)s"),
        _point("payments_successful" if ok else "payments_failed", group, "1", "%(t2)s"),
    ]
    root = f'{{"group":"","scenario":"{scenario}"{more}}}'
    lines += [
        _point("data_sent", root, "%(sent)s", "%(t3)s"),
        _point("data_received", root, "%(recv)s", "%(t3)s"),
        _point("iteration_duration", root, "%(iter)s", "%(t3)s"),
        _point("iterations", root, "1", "%(t3)s"),
    ]
    return "".join(lines)


def _rfc3339nano(ns: int) -> str:
    """k6's time format: RFC3339 with nanoseconds, trailing zeros trimmed."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def generate(path: Path, requests: int, seed: int = 7, custom_tags: int = 0) -> int:
    """Write a k6 ``--out json`` file with ``requests`` HTTP requests; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    iterations = max(1, requests // 2)
    templates = {(s, ok): _iteration_template(s, ok, custom_tags) for s in ("ramp_up", "spike") for ok in (True, False)}
    start_ns = 1_795_000_000_000_000_000
    duration_s = max(2, iterations // 250)  # ~500 requests/s
    offsets = np.sort(rng.integers(0, duration_s * 1_000_000_000, size=iterations))
    durations = np.round(rng.lognormal(np.log(40), 0.5, size=(iterations, 14)), 6)
    failed = rng.random(iterations) < 0.01
    next_vus_s = 0
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(
            json.dumps({"type": "Metric", "data": {"name": name, "type": mtype, "contains": "default",
                                                   "thresholds": [], "submetrics": None}, "metric": name},
                       separators=(",", ":")) + "\n"
            for name, mtype in _METRIC_TYPES.items()
        )
        for i in range(iterations):
            t = start_ns + int(offsets[i])
            while t // 1_000_000_000 >= start_ns // 1_000_000_000 + next_vus_s:
                when = _rfc3339nano(start_ns + next_vus_s * 1_000_000_000 + 46_445_783)
                vus = str(min(50, 5 + next_vus_s))
                out.write(_point("vus", "{}", vus, when) + _point("vus_max", "{}", "50", when))
                next_vus_s += 1
            scenario = "spike" if (i // 1000) % 4 == 3 else "ramp_up"
            d = durations[i].tolist()
            fields = {f"d{k}": d[k] for k in range(14)}
            out.write(templates[(scenario, not failed[i])] % dict(
                t1=_rfc3339nano(t), t2=_rfc3339nano(t + int(d[0] * 1e6)), t3=_rfc3339nano(t + int(d[7] * 2e6)),
                pid=f"{i:08x}", pay=d[0], sent=412 + i % 7, recv=1187 + i % 13, iter=round(d[0] + d[7] + 0.5, 6),
                **fields,
            ))
    return path.stat().st_size


def _previous_module(rev: str, folder: Path) -> Path | None:
    """The previous ``samples.py`` (``git show REV:...``) as a file in ``folder``; None without git or the rev."""
    proc = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:hardening/loadtest/samples.py"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"previous ingestion not measured: git show {rev} failed: {proc.stderr.strip()[:200]}")
        return None
    path = folder / "previous_samples.py"
    path.write_text(proc.stdout)
    return path


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(mode: str, src: str, dest: str) -> None:
    """Run one contender in this (fresh) process and print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    if mode == "ingest":
        from hardening.loadtest.samples import ingest_k6_json
    elif mode.startswith("previous="):  # the previous samples.py, importing today's helpers (atomic, errors)
        spec = importlib.util.spec_from_file_location("previous_samples", mode.split("=", 1)[1])
        module = importlib.util.module_from_spec(spec)
        sys.modules["previous_samples"] = module
        spec.loader.exec_module(module)
        ingest_k6_json = module.ingest_k6_json
    started, cpu = time.perf_counter(), _cpu_seconds()
    if mode == "naive":
        import pandas as pd

        frame = pd.read_json(src, lines=True)
        rows = int((frame["type"] == "Point").sum())
    else:
        rows = ingest_k6_json(src, dest).points
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak_kib / 1024, "rows": rows}))


def _measure(mode: str, src: Path, dest: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", mode, str(src), str(dest)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], pick=statistics.median) -> dict:
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    return {key: pick(r[key] for r in good) for key in ("seconds", "cpu", "peak_mb", "rows")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000, help="HTTP requests in the generated file")
    parser.add_argument("--custom-tags", type=int, default=0, metavar="N",
                        help="scenario-level custom tags on every sample (default 0: k6's own tags only)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating runs of current and previous (default 5; median and fastest compared)")
    parser.add_argument("--previous", default=PREVIOUS_REV, metavar="REV",
                        help="git revision of the previous ingestion (default: before every tag was kept); "
                             "'none' to skip it")
    parser.add_argument("--skip-naive", action="store_true", help="do not measure pandas.read_json")
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "SRC", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        src = Path(tmp) / "k6-out.json"
        t0 = time.perf_counter()
        size = generate(src, args.requests, custom_tags=args.custom_tags)
        with open(src, "rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b""))
        mb = size / 1e6
        print(f"generated {args.requests:,} requests ({args.custom_tags} custom tags): {lines:,} lines, {mb:,.0f} MB "
              f"in {time.perf_counter() - t0:.1f}s ({src})")
        previous = _previous_module(args.previous, Path(tmp)) if args.previous != "none" else None
        current_runs, previous_runs = [], []
        for _ in range(max(1, args.rounds)):
            current_runs.append(_measure("ingest", src, Path(tmp) / "samples.parquet"))
            if previous is not None:
                previous_runs.append(_measure(f"previous={previous}", src, Path(tmp) / "previous.parquet"))
        results = {"ingest_k6_json": _median(current_runs)}
        parquet_mb = (Path(tmp) / "samples.parquet").stat().st_size / 1e6
        if previous is not None:
            results[f"previous ({args.previous[:7]})"] = _median(previous_runs)
        if not args.skip_naive:
            results["pandas.read_json(lines=True)"] = _measure("naive", src, Path(tmp) / "unused")
        print(f"{'contender':<30} {'seconds':>8} {'cpu s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'rows':>11}")
        for name, r in results.items():
            if "error" in r:
                print(f"{name:<30} failed: {r['error']}")
                continue
            print(f"{name:<30} {r['seconds']:>8.2f} {r['cpu']:>8.2f} {mb / r['seconds']:>8.1f} {r['peak_mb']:>12.0f} "
                  f"{r['rows']:>11,.0f}")
        print(f"samples.parquet: {parquet_mb:.1f} MB ({size / (parquet_mb * 1e6):.0f}x smaller than the NDJSON)"
              + (f"; previous: {(Path(tmp) / 'previous.parquet').stat().st_size / 1e6:.1f} MB" if previous else ""))
        ours = results["ingest_k6_json"]
        if "error" in ours:
            return 1
        if previous is not None and previous_runs:
            before = results[f"previous ({args.previous[:7]})"]
            if "error" not in before:
                wall, cpu = ours["seconds"] / before["seconds"], ours["cpu"] / before["cpu"]
                # the fastest round of each is the least disturbed by other work on the machine
                fast_now, fast_before = _median(current_runs, min), _median(previous_runs, min)
                fast_wall = fast_now["seconds"] / fast_before["seconds"]
                fast_cpu = fast_now["cpu"] / fast_before["cpu"]
                rounds_now = ", ".join(f"{r['seconds']:.2f}" for r in current_runs if "error" not in r)
                rounds_before = ", ".join(f"{r['seconds']:.2f}" for r in previous_runs if "error" not in r)
                print(f"current/previous, median of {len(current_runs)} rounds: wall {wall:.3f}x, cpu {cpu:.3f}x; "
                      f"fastest rounds: wall {fast_wall:.3f}x, cpu {fast_cpu:.3f}x")
                print(f"  wall per round: current {rounds_now}; previous {rounds_before}")
                verdict = "met" if max(wall, cpu) <= MAX_SLOWDOWN else "NOT met"
                print(f"target <= {MAX_SLOWDOWN:.2f}x the previous ingestion (median wall and cpu): {verdict}")
        naive = results.get("pandas.read_json(lines=True)")
        if naive and "error" not in naive:
            speed = naive["seconds"] / ours["seconds"]
            memory = naive["peak_mb"] / ours["peak_mb"]
            print(f"speed ratio (naive/ours): {speed:.1f}x faster   memory ratio (naive/ours): {memory:.1f}x less")
            print(f"target >=10x faster: {'met' if speed >= 10 else 'NOT met'}; "
                  f"peak < 1 GB: {'met' if ours['peak_mb'] < 1024 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
