"""Benchmark: merging the raw outputs of ``hardening loadtest --instances N`` vs ingesting one file.

Generates ``--instances`` k6-format NDJSON files of ``--requests`` HTTP requests each (the generator of
``bench_ingest.py``, a different seed per instance, every sample tagged ``instance=<i>`` as ``--instances``
tags them), and one file holding exactly the same lines (their concatenation). Then, each in its own
subprocess so each gets its own peak RSS and CPU time, ``--rounds`` times in alternating order (medians shown;
on a busy machine the CPU time is the steadier figure):

- ``merge``: ``ingest_k6_outputs(files)``, what ``--instances`` does: one samples.parquet from every output;
- ``one file``: ``ingest_k6_json(concatenation)``, one k6 writing the same requests;
- ``whole summary``: ``instances.whole_summary`` on the merged samples.parquet (the whole test's k6 summary
  from the samples, also part of an ``--instances`` run).

    .venv/bin/python benchmarks/bench_merge.py                  # 4 x 200,000 requests (~3.6 GB of NDJSON)
    .venv/bin/python benchmarks/bench_merge.py --requests 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import generate  # noqa: E402  (the same synthetic k6 output as the ingestion benchmark)


def _tag_instance(src: Path, dest: Path, index: int) -> int:
    """Copy ``src`` with ``"instance":"<index>"`` added to every Point's tags (as ``--tag instance=<i>`` does)."""
    tag = f'"instance":"{index}"'.encode()
    with open(src, "rb") as fh, open(dest, "wb") as out:
        pending = b""
        while chunk := fh.read(1 << 24):
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            block = data[:cut].replace(b'"tags":{"', b'"tags":{' + tag + b',"')  # non-empty tags first,
            out.write(block.replace(b'"tags":{}', b'"tags":{' + tag + b"}"))  # then empty ones (vus)
        out.write(pending)
    return dest.stat().st_size


def _worker(mode: str, dest: str, sources: list[str]) -> None:
    """Run one contender in this (fresh) process and print its figures as JSON."""
    started = time.perf_counter()
    if mode == "merge":
        from hardening.loadtest.samples import ingest_k6_outputs

        rows = ingest_k6_outputs(sources, dest).points
    elif mode == "one":
        from hardening.loadtest.samples import ingest_k6_json

        rows = ingest_k6_json(sources[0], dest).points
    else:
        import pyarrow.parquet as pq

        from hardening.loadtest.instances import whole_summary
        from hardening.loadtest.samples import META_METRIC_TYPES

        meta = pq.read_metadata(dest).metadata or {}
        types = json.loads(meta.get(META_METRIC_TYPES, b"{}"))
        summary = whole_summary(Path(dest), [], metric_types=types, duration_s=800.0,
                                trend_stats=["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"],
                                submetrics=["http_req_duration{scenario:spike}", "http_req_duration{expected_response:true}"])
        rows = int(summary["metrics"]["http_reqs"]["count"])
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
                      "rows": rows}))


def _measure(mode: str, dest: Path, sources: list[Path]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", mode, str(dest), *map(str, sources)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000, help="HTTP requests per instance's output")
    parser.add_argument("--instances", type=int, default=4, help="instance outputs to merge")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each contender (medians shown)")
    parser.add_argument("--worker", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker[0], args.worker[1], args.worker[2:])
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        outputs = []
        for i in range(1, args.instances + 1):
            plain = folder / f"plain-{i}.json"
            generate(plain, args.requests, seed=7 + i)
            outputs.append(folder / f"instance-{i}.json")
            _tag_instance(plain, outputs[-1], i)
            plain.unlink()
        one = folder / "one.json"
        with open(one, "wb") as out:
            for src in outputs:
                with open(src, "rb") as fh:
                    while chunk := fh.read(1 << 24):
                        out.write(chunk)
        size = one.stat().st_size
        mb = size / 1e6
        total = args.requests * args.instances
        print(f"generated {args.instances} outputs of {args.requests:,} requests ({total:,} requests, {mb:,.0f} MB) "
              f"and their concatenation in {time.perf_counter() - t0:.1f}s")
        os.sync()  # the files just written are flushed now, not while a contender is measured
        merged = folder / "merged.parquet"
        merge_name, one_name, summary_name = f"merge {args.instances} files", "one file, same requests", \
            "whole summary (merged)"
        runs: dict[str, list[dict]] = {merge_name: [], one_name: [], summary_name: []}
        for k in range(args.rounds):
            order = [(merge_name, "merge", merged, outputs), (one_name, "one", folder / "one.parquet", [one])]
            for name, mode, dest, sources in order if k % 2 == 0 else order[::-1]:
                runs[name].append(_measure(mode, dest, sources))
            runs[summary_name].append(_measure("summary", merged, []))
        print(f"{'contender':<26} {'seconds':>8} {'CPU s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'rows':>12}")
        results = {}
        for name, rounds in runs.items():
            failed = [r for r in rounds if "error" in r]
            if failed:
                print(f"{name:<26} failed: {failed[0]['error']}")
                continue
            r = results[name] = {key: statistics.median(x[key] for x in rounds) for key in rounds[0]}
            rate = f"{mb / r['seconds']:>8.1f}" if name != summary_name else f"{'':>8}"
            print(f"{name:<26} {r['seconds']:>8.2f} {r['cpu']:>8.2f} {rate} {r['peak_mb']:>12.0f} {r['rows']:>12,.0f}")
        ours, base = results.get(merge_name), results.get(one_name)
        if ours and base:
            print(f"ratio merge/one file (medians of {args.rounds}): time {ours['seconds'] / base['seconds']:.2f}x, "
                  f"CPU {ours['cpu'] / base['cpu']:.2f}x, peak RSS {ours['peak_mb'] / base['peak_mb']:.2f}x "
                  f"(rows equal: {ours['rows'] == base['rows']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
