"""``hardening loadtest --instances N``: one k6 test split across N k6 processes on this machine, one verdict.

Each instance runs segment ``i`` of the sequence ``0,1/N,2/N,…,1`` (``--execution-segment``, as the k6-operator
does), with its own REST API port, raw output, summary export and working directory
(``k6/instance-<i>/``), and the tag ``instance=<i>`` on every sample.

Start together: every k6 starts ``--paused``; once every REST API reports its VUs initialised (status
``PausedBeforeRun``), each is resumed with ``PATCH /v1/status {"paused": false}`` (what the k6-operator's
starter job sends), one right after the other on loopback.

Stop together: a stop signal goes to every instance (``STOP_SIGNALS.forwarding_to`` a group of them); an
instance that ends the test early (``abortOnFail`` crossed on its segment: exit 99 with k6's "stopping test
prematurely" line; ``exec.test.abort()``; a crash) makes the others stop with SIGINT, so they still write their
summaries. An instance that merely finishes its share first (exit 0, 110, or 99 for thresholds crossed on its
own segment at its natural end) stops nobody.

One verdict: the instances' raw outputs are merged into the record's one samples file (``RunLayout.samples``,
streaming), and the whole test's summary is computed from those samples (:func:`whole_summary`) and written
as the record's k6 summary (``RunLayout.k6_summary``); the SLOs are then evaluated as for one k6. k6's own
per-instance summaries are kept and shown per instance, never averaged.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hardening.atomic import write_json
from hardening.errors import HardeningError, InfraError
from hardening.loadtest import k6 as k6mod
from hardening.loadtest.k6stats import percentile_sorted
from hardening.loadtest.samples import INSTANCE_TAG, TAG_COLUMNS, TAGS_COLUMN, IngestStats, ingest_k6_outputs
from hardening.net import free_port
from hardening.processes import STOP_SIGNALS
from hardening.record.layout import RunLayout
from hardening.record.model import (
    BUILTIN_METRICS,
    COUNTER,
    GAUGE,
    RATE,
    TREND,
    InstanceSummary,
    infer_type,
    key_metrics,
)

MAX_INSTANCES = 64
READY_TIMEOUT_S = 120.0  # VU initialisation of every instance (a big script's init code can take a while)
STOP_GRACE_S = 30.0  # after SIGINT, how long an instance may take to write its summary before SIGKILL
PAUSED_BEFORE_RUN = 4  # k6's lib.ExecutionStatus: VUs initialised, waiting to be resumed (k6 1.1.0)
# k6 1.1.0's line when an abortOnFail threshold ends the test (it then exits 99)
ABORT_ON_FAIL_LINE = re.compile(r"abortOnFail enabled, stopping test prematurely")
# The k6 Gauges that count this instance's share of the test's VUs: the whole test's value is their sum.
VU_GAUGES = ("vus", "vus_max")


# ------------------------------------------------------------------------------------------------ segments
def _point(k: int, n: int) -> str:
    return "0" if k == 0 else "1" if k == n else f"{k}/{n}"


def segment_sequence(n: int) -> str:
    """``0,1/3,2/3,1`` for 3 instances."""
    return ",".join(_point(k, n) for k in range(n + 1))


def segment(index: int, n: int) -> str:
    """Instance ``index`` (1-based) of ``n``: ``0:1/3``, ``1/3:2/3``, ``2/3:1``."""
    return f"{_point(index - 1, n)}:{_point(index, n)}"


def instance_args(index: int, n: int) -> list[str]:
    """The flags that make one k6 of ``n`` run its segment, paused, with its ``instance`` tag."""
    return ["--execution-segment", segment(index, n), "--execution-segment-sequence", segment_sequence(n),
            "--paused", "--tag", f"{INSTANCE_TAG}={index}"]


# ------------------------------------------------------------------------------------------ live progress
def combine_live(stats: Sequence[k6mod.LiveStats]) -> k6mod.LiveStats:
    """The instances' live values as one: requests, req/s, VUs and iterations summed, the error rate weighted
    by requests, p95 the highest of the instances' (a percentile does not add up; labelled so)."""
    out = k6mod.LiveStats(final=bool(stats) and all(s.final for s in stats))
    out.requests = sum(s.requests for s in stats)
    out.rps = sum(s.rps for s in stats)
    out.vus = sum(s.vus for s in stats)
    out.iterations = sum(s.iterations or 0 for s in stats)
    weighted = [(s.error_rate, s.requests) for s in stats if s.error_rate is not None and s.requests]
    total = sum(n for _, n in weighted)
    out.error_rate = sum(r * n for r, n in weighted) / total if total else None
    p95s = [s.p95_ms for s in stats if s.p95_ms is not None]
    out.p95_ms = max(p95s) if p95s else None
    return out


class GroupProgressPrinter(k6mod.ProgressPrinter):
    """The progress line of N instances: totals, and p95 as the highest instance's (said on the line)."""

    def line(self, s: k6mod.LiveStats) -> str:
        return super().line(s).replace("  p95 ", "  p95 (max of instances) ", 1)


# ---------------------------------------------------------------------------------------------- the run
def _api(address: str, method: str = "GET", body: dict | None = None, timeout: float = 1.0) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{address}/v1/status", data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)["data"]["attributes"]


def k6_status(address: str) -> dict | None:
    """``GET /v1/status`` attributes (``status``, ``paused``, ``vus``...); None while the API is not up."""
    try:
        return _api(address)
    except (OSError, ValueError, KeyError, TypeError):
        return None


RESUME = {"data": {"attributes": {"paused": False}, "type": "status", "id": "default"}}


def resume(address: str) -> None:
    """What the k6-operator's starter job sends every runner: ``PATCH /v1/status`` with paused false."""
    _api(address, "PATCH", RESUME, timeout=5.0)


@dataclass
class Instance:
    """One k6 process of the group."""

    index: int  # 1-based
    count: int
    run: k6mod.K6Run  # command line, paths
    address: str
    proc: subprocess.Popen | None = None
    exit_code: int | None = None
    stopped: bool = False  # we sent it SIGINT because another instance ended the test
    ends_test: bool = False  # it ended the test early (abortOnFail, exec.test.abort, a crash...)
    aborted_on_fail: bool = False
    live: k6mod.LiveStats | None = None

    @property
    def segment(self) -> str:
        return segment(self.index, self.count)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.exit_code is None


@dataclass
class GroupResult(k6mod.K6Result):
    """What the group did: the combined exit code (see :meth:`InstanceGroup.run`), each instance."""

    instances: list[Instance] = field(default_factory=list)
    trigger: int | None = None  # the instance that ended the test early, if any


class _Processes:
    """The instances as one child for ``STOP_SIGNALS.forwarding_to``: running while any runs; a forwarded stop
    signal reaches every one still running."""

    def __init__(self, procs: Iterable[subprocess.Popen]):
        self.procs = list(procs)

    def poll(self) -> int | None:
        return None if any(p.poll() is None for p in self.procs) else 0

    def send_signal(self, sig: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(sig)


def _ended_early(inst: Instance) -> bool:
    """Whether this instance's exit ends the whole test (the others are then stopped)."""
    code = inst.exit_code
    if code in (0, 110):  # done with its share (110: exec.test.fail marks the test failed, k6 runs on)
        return False
    if code == 99:  # thresholds crossed: at its natural end (its segment's verdict), or abortOnFail
        try:
            text = inst.run.log_path.read_text(errors="replace")
        except OSError:
            return False
        inst.aborted_on_fail = bool(ABORT_ON_FAIL_LINE.search(text))
        return inst.aborted_on_fail
    return True  # 105 (someone stopped this k6), 107/104 (script), 108 (exec.test.abort), crashes


@dataclass
class InstanceGroup:
    """N ``k6 run`` processes of one test, started and stopped together (module docstring)."""

    k6: Path
    script: Path
    env: dict[str, str]
    layout: RunLayout  # the record being written: k6/instance-<i>/ and the combined k6 log
    count: int
    trend_stats: str = k6mod.TREND_STATS
    on_progress: Callable[[k6mod.LiveStats], None] | None = None
    ready_timeout_s: float = READY_TIMEOUT_S
    instances: list[Instance] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        for i in range(1, self.count + 1):
            folder = self.layout.instance_dir(i)
            run = k6mod.K6Run(
                k6=self.k6, script=self.script, env=self.env, cwd=folder.resolve(),
                summary_path=self.layout.instance_summary(i).resolve(), raw_path=self.layout.instance_raw(i).resolve(),
                log_path=self.layout.instance_log(i), trend_stats=self.trend_stats,
                extra_args=instance_args(i, self.count))
            self.instances.append(Instance(index=i, count=self.count, run=run, address=f"127.0.0.1:{free_port()}"))

    def run(self) -> GroupResult:
        """Run every instance to its end. The combined exit code is 105 after a stop signal; else the code of the
        instance that ended the test early (99 for abortOnFail); else 110 if any instance's script failed the
        test, else 0: a 99 at an instance's natural end is k6's verdict on its segment only, and the run's
        verdict comes from every instance's samples together."""
        started = time.monotonic()
        started_wall = time.time() - 1.0  # file mtimes can lag the clock by a tick
        trigger: Instance | None = None
        for inst in self.instances:
            inst.run.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Every k6 is registered for stopping as it starts (STOP_SIGNALS.spawn); the block's end stops any still
        # running if an error unwinds past it; the kernel stops them if this process is killed outright.
        with STOP_SIGNALS, contextlib.ExitStack() as logs:
            for inst in self.instances:
                log = logs.enter_context(open(inst.run.log_path, "wb"))
                try:
                    inst.proc = STOP_SIGNALS.spawn(
                        inst.run.command(inst.address), stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True, cwd=inst.run.cwd,
                        stop_signal=signal.SIGINT)
                except OSError as exc:
                    raise InfraError(k6mod.cannot_execute(self.k6, exc)) from exc
            group = _Processes(i.proc for i in self.instances)
            with STOP_SIGNALS.forwarding_to(group) as forwarded:  # type: ignore[arg-type]
                try:
                    trigger = self._start_together(forwarded)
                    trigger = self._watch(forwarded, started, trigger)
                finally:
                    self._stop_running()  # only when unwinding on an error: never leave k6 behind
        if self.on_progress:
            finals = [k6mod.read_final(i.run.summary_path, started_wall) for i in self.instances]
            if all(f is not None for f in finals):
                final = combine_live([f for f in finals if f is not None])
                final.elapsed = time.monotonic() - started
                self.on_progress(final)
        codes = [i.exit_code for i in self.instances]
        if forwarded.is_set():
            code = 105
        elif trigger is not None:
            code = trigger.exit_code if trigger.exit_code is not None else 255
        else:
            code = 110 if 110 in codes else 0
        log_path = self._combined_log()
        return GroupResult(exit_code=code, interrupted=forwarded.is_set() or code == 105,
                           seconds=time.monotonic() - started, log_path=log_path, instances=self.instances,
                           trigger=trigger.index if trigger is not None else None)

    def _reap(self) -> list[Instance]:
        """Record the exit of instances that ended since the last look; returns them."""
        ended = []
        for inst in self.instances:
            if inst.running and inst.proc is not None and inst.proc.poll() is not None:
                inst.exit_code = inst.proc.returncode
                ended.append(inst)
        return ended

    def _end_test(self, by: Instance) -> Instance:
        """``by`` ended the test: stop the others with SIGINT (they still write their summaries)."""
        by.ends_test = True
        for inst in self.instances:
            if inst.running and inst.proc is not None:
                inst.stopped = True
                with contextlib.suppress(ProcessLookupError):
                    inst.proc.send_signal(signal.SIGINT)
        return by

    def _start_together(self, forwarded) -> Instance | None:
        """Wait until every instance is initialised and paused, then resume them all; an instance that exits
        before (a script error, a signal) ends the test instead. Returns the instance that ended it, if any."""
        deadline = time.monotonic() + self.ready_timeout_s
        waiting = list(self.instances)
        while waiting:
            for inst in self._reap():
                if not forwarded.is_set():
                    return self._end_test(inst)
            if forwarded.is_set():
                return None
            waiting = [i for i in waiting if (st := k6_status(i.address)) is None
                       or int(st.get("status") or 0) < PAUSED_BEFORE_RUN]
            if waiting and time.monotonic() > deadline:
                raise InfraError(f"k6 instance(s) {', '.join(str(i.index) for i in waiting)} did not get ready "
                                 f"(REST API answering, VUs initialised) within {self.ready_timeout_s:.0f} s; see "
                                 f"{self.layout.k6_dir}/instance-*/{self.layout.k6_log.name}")
            if waiting:
                time.sleep(0.02)
        for inst in self.instances:
            try:
                resume(inst.address)
            except OSError as exc:
                if forwarded.is_set() or (inst.proc is not None and inst.proc.poll() is not None):
                    continue  # it is stopping (a signal) or ended: the watch loop sees it
                raise InfraError(f"could not resume k6 instance {inst.index} at {inst.address} "
                                 f"(PATCH /v1/status): {exc}") from exc
        return None

    def _watch(self, forwarded, started: float, trigger: Instance | None) -> Instance | None:
        """Until every instance has exited: note who ended the test, stop the others, report progress."""
        last_progress = 0.0
        stop_deadline: float | None = time.monotonic() + STOP_GRACE_S if trigger is not None else None
        while any(i.running for i in self.instances):
            for inst in self._reap():
                if self.on_progress:
                    inst.live = k6mod.read_final(inst.run.summary_path, 0.0) or inst.live
                    if inst.live is not None:
                        inst.live.vus = 0
                if trigger is None and not inst.stopped and not forwarded.is_set() and _ended_early(inst):
                    trigger = self._end_test(inst)
                    stop_deadline = time.monotonic() + STOP_GRACE_S
            if forwarded.is_set() and stop_deadline is None:
                stop_deadline = time.monotonic() + STOP_GRACE_S
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                self._kill_running()
            now = time.monotonic()
            if self.on_progress and now - last_progress >= 1.0:
                last_progress = now
                for inst in self.instances:
                    if inst.running:
                        inst.live = k6mod.read_live(inst.address) or inst.live
                seen = [i.live for i in self.instances if i.live is not None]
                if seen:
                    live = combine_live(seen)
                    live.elapsed = now - started
                    self.on_progress(live)
            time.sleep(0.05)
        self._reap()
        return trigger

    def _kill_running(self) -> None:
        for inst in self.instances:
            if inst.running and inst.proc is not None:
                inst.proc.kill()
                inst.proc.wait()
                inst.exit_code = inst.proc.returncode

    def _stop_running(self) -> None:
        running = [i for i in self.instances if i.running and i.proc is not None and i.proc.poll() is None]
        for inst in running:
            with contextlib.suppress(ProcessLookupError):
                inst.proc.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        deadline = time.monotonic() + 15
        for inst in running:
            try:
                inst.proc.wait(timeout=max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                inst.proc.kill()  # type: ignore[union-attr]
                inst.proc.wait()  # type: ignore[union-attr]
        self._reap()

    def _combined_log(self) -> Path:
        """Every instance's console output, one after the other under a header, in ``RunLayout.k6_log``."""
        dest = self.layout.k6_log
        with open(dest, "wb") as out:
            for inst in self.instances:
                code = inst.exit_code
                meaning = k6mod.exit_meaning(code) if code is not None else "not started"
                stopped = ", stopped by hardening" if inst.stopped else ""
                out.write(f"===== k6 instance {inst.index}/{inst.count} (segment {inst.segment}): exit {code} "
                          f"({meaning}{stopped}) =====\n".encode())
                with contextlib.suppress(OSError):
                    with open(inst.run.log_path, "rb") as src:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                    inst.run.log_path.unlink()
                out.write(b"\n")
        return dest


# ------------------------------------------------------------------------------ the whole test's summary
def _values(entry: Any) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "thresholds"} if isinstance(entry, Mapping) else {}


def k6_test_seconds(summary: Mapping[str, Any]) -> float | None:
    """k6's test run duration of one summary export: a Counter's count / rate (k6's rate is count / it)."""
    for name in ("iterations", "http_reqs", *(summary.get("metrics") or {})):
        values = _values((summary.get("metrics") or {}).get(name))
        count, rate = values.get("count"), values.get("rate")
        if isinstance(count, (int, float)) and isinstance(rate, (int, float)) and count and rate:
            return float(count) / float(rate)
    return None


def _sequential_sum(values: np.ndarray, start: float = 0.0, chunk: int = 1 << 20) -> float:
    """``start + v0 + v1 + …`` one float64 addition at a time, in order, as k6's sinks add (``np.add.accumulate``
    is sequential, unlike ``np.sum``); in chunks, so memory stays bounded."""
    total = float(start)
    for at in range(0, len(values), chunk):
        part = values[at:at + chunk]
        if len(part):
            total = float(np.add.accumulate(np.concatenate(([total], part)))[-1])
    return total


class _Trend:
    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, values: np.ndarray, times: np.ndarray) -> None:
        if len(values):
            self.parts.append(values)

    def result(self, stats: Sequence[str], duration_s: float) -> dict[str, float]:
        values = np.concatenate(self.parts) if self.parts else np.empty(0)
        n = len(values)
        if n == 0:  # how k6 exports a Trend without samples (the SLO engine tells it by count 0)
            return {s: 0 for s in stats}
        ordered = np.sort(values)
        out: dict[str, float] = {}
        for s in stats:
            if s == "avg":
                out[s] = _sequential_sum(values) / n
            elif s == "min":
                out[s] = float(ordered[0])
            elif s == "max":
                out[s] = float(ordered[-1])
            elif s == "med":
                out[s] = percentile_sorted(ordered, 0.5)  # type: ignore[assignment]
            elif s == "count":
                out[s] = n
            elif s.startswith("p("):  # k6 turns p(N) into N/100 (k6stats): the same float here
                out[s] = percentile_sorted(ordered, float(s[2:-1]) / 100)  # type: ignore[assignment]
        return out


class _Counter:
    def __init__(self) -> None:
        self.total = 0.0

    def add(self, values: np.ndarray, times: np.ndarray) -> None:
        self.total = _sequential_sum(values, self.total)

    def result(self, stats: Sequence[str], duration_s: float) -> dict[str, float]:
        count = int(self.total) if float(self.total).is_integer() else self.total
        return {"count": count, "rate": self.total / duration_s if duration_s > 0 else 0}


class _Rate:
    def __init__(self) -> None:
        self.passes = 0
        self.fails = 0

    def add(self, values: np.ndarray, times: np.ndarray) -> None:
        nonzero = int(np.count_nonzero(values))
        self.passes += nonzero
        self.fails += len(values) - nonzero

    def result(self, stats: Sequence[str], duration_s: float) -> dict[str, float]:
        total = self.passes + self.fails
        return {"passes": self.passes, "fails": self.fails, "value": self.passes / total if total else 0}


class _Gauge:
    """The test's last sample (latest time; on a tie the later one in the file), min and max."""

    def __init__(self) -> None:
        self.last: tuple[int, float] | None = None  # (time in µs, value)
        self.low = math.inf
        self.high = -math.inf

    def add(self, values: np.ndarray, times: np.ndarray) -> None:
        if not len(values):
            return
        at = len(times) - 1 - int(np.argmax(times[::-1]))  # the last occurrence of the latest time
        if self.last is None or int(times[at]) >= self.last[0]:
            self.last = (int(times[at]), float(values[at]))
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    def result(self, stats: Sequence[str], duration_s: float) -> dict[str, float]:
        if self.last is None:
            return {"value": 0, "min": 0, "max": 0}
        return {"value": self.last[1], "min": self.low, "max": self.high}


def _accumulator(kind: str):
    return {TREND: _Trend, COUNTER: _Counter, RATE: _Rate}.get(kind, _Gauge)()


def _vu_gauge(name: str, summaries: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """``vus``/``vus_max`` of the whole test: each instance's own value, min and max (k6's figures of that
    instance's samples, from its summary) summed; None when no summary has it."""
    parts = [v for s in summaries if (v := _values((s.get("metrics") or {}).get(name)))]
    if not parts:
        return None
    return {stat: sum(float(p.get(stat) or 0) for p in parts) for stat in ("value", "min", "max")}


def _metric_type(name: str, types: Mapping[str, str], summaries: Sequence[Mapping[str, Any]]) -> str:
    kind = types.get(name) or BUILTIN_METRICS.get(name)
    if kind:
        return kind
    for s in summaries:
        values = _values((s.get("metrics") or {}).get(name))
        if values:
            return infer_type(values)
    return GAUGE


def _merge_groups(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """k6's ``root_group`` of several instances as one: checks' passes and fails summed, groups merged by name."""
    groups = [g for g in groups if isinstance(g, Mapping)]
    if not groups:
        return {}
    out = {k: v for k, v in groups[0].items() if k not in ("groups", "checks")}
    checks: dict[str, dict[str, Any]] = {}
    for g in groups:
        for name, check in (g.get("checks") or {}).items():
            if name in checks:
                checks[name]["passes"] += check.get("passes", 0)
                checks[name]["fails"] += check.get("fails", 0)
            else:
                checks[name] = dict(check)
    children: dict[str, list[Mapping[str, Any]]] = {}
    for g in groups:
        for name, child in (g.get("groups") or {}).items():
            children.setdefault(name, []).append(child)
    out["groups"] = {name: _merge_groups(parts) for name, parts in children.items()}
    out["checks"] = checks
    return out


def whole_summary(samples: Path, summaries: Sequence[Mapping[str, Any]], *, metric_types: Mapping[str, str],
                  trend_stats: Sequence[str], duration_s: float,
                  submetrics: Iterable[str] = ()) -> dict[str, Any]:
    """The whole test's ``--summary-export`` computed from the merged samples (``samples``) of every instance.

    - Trend: k6's own statistics of all samples together (``k6stats``: exact percentiles, avg as a running sum
      in the file's order, instance after instance), the stats of ``trend_stats``.
    - Counter: the samples' sum; ``rate`` = count / ``duration_s`` (the whole test's duration).
    - Rate: passes (non-zero samples) and fails summed; value = passes / (passes + fails).
    - Gauge: ``value`` = the last sample of the test (latest time over all instances), ``min``/``max`` over all
      samples. k6's ``vus`` and ``vus_max`` count one instance's share of the VUs: for them each statistic is
      the sum over instances of that instance's own (k6's figure of its samples, from its summary), so
      ``vus_max`` is the whole test's VUs (telling the instances' samples apart would mean reading every
      sample's tags: several times the cost of the rest).
    - Sub-metrics (``metric{tag:value}``): those of the instances' summaries and ``submetrics`` (the SLOs'),
      from the samples carrying those tags.
    - ``root_group``: the instances' checks, passes and fails summed.
    NaN samples are dropped, as k6 drops them. Memory: the Trend values (8 bytes each); the rest streams.
    """
    from hardening.loadtest.slo import parse_metric_key

    names: dict[str, None] = {}
    keys: dict[str, tuple[str, dict[str, str]]] = {}
    for s in summaries:
        for key in s.get("metrics") or {}:
            if "{" not in key:
                names.setdefault(key)
    for key in [*(k for s in summaries for k in s.get("metrics") or {} if "{" in k), *submetrics]:
        with contextlib.suppress(HardeningError):
            keys.setdefault(key, parse_metric_key(key))
    filter_tags = sorted({t for _, tags in keys.values() for t in tags})
    schema = pq.read_schema(samples)
    column_tags = [t for t in filter_tags if t in TAG_COLUMNS and t in schema.names]
    # the tags map is read only for sub-metrics on tags that are not columns (it is the costliest column)
    read_map = TAGS_COLUMN in schema.names and any(t not in column_tags for t in filter_tags)
    columns = ["time", "metric", "value", *column_tags, *([TAGS_COLUMN] if read_map else [])]

    accumulators: dict[str, Any] = {}

    def acc(key: str, metric: str) -> Any:
        if key not in accumulators:
            accumulators[key] = _accumulator(_metric_type(metric, metric_types, summaries))
        return accumulators[key]

    by_metric: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for key, (metric, tags) in keys.items():
        by_metric.setdefault(metric, []).append((key, tags))
    for batch in pq.ParquetFile(samples).iter_batches(batch_size=1 << 19, columns=columns):
        metric = batch.column("metric")
        if not isinstance(metric, pa.DictionaryArray):
            metric = pc.dictionary_encode(metric)
        codes = metric.indices.to_numpy(zero_copy_only=False)
        dictionary = metric.dictionary.to_pylist()
        values = batch.column("value").to_numpy(zero_copy_only=False).astype(float, copy=False)
        times = batch.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        tag_cache: dict[str, pa.Array] = {}

        def tag(name: str, batch=batch, cache=tag_cache) -> pa.Array:
            if name not in cache:
                if name in column_tags:
                    cache[name] = batch.column(name)
                elif read_map:
                    cache[name] = pc.map_lookup(batch.column(TAGS_COLUMN), pa.scalar(name, pa.string()), "first")
                else:
                    cache[name] = pa.nulls(batch.num_rows, pa.string())
            return cache[name]

        valid = ~np.isnan(values)  # k6 drops NaN samples before any sink sees them
        for code in np.unique(codes):
            name = dictionary[code]
            rows = (codes == code) & valid
            names.setdefault(name)
            acc(name, name).add(values[rows], times[rows])
            for key, tags in by_metric.get(name, ()):
                sub = rows.copy()
                for t, want in tags.items():
                    sub &= pc.fill_null(pc.equal(tag(t), want), False).to_numpy(zero_copy_only=False)
                acc(key, name).add(values[sub], times[sub])

    metrics: dict[str, Any] = {}
    for key in [*names, *keys]:
        metric = keys[key][0] if key in keys else key
        summed = _vu_gauge(key, summaries) if key in VU_GAUGES else None
        metrics[key] = summed if summed is not None else acc(key, metric).result(trend_stats, duration_s)
    return {
        "root_group": _merge_groups([s.get("root_group") for s in summaries]),
        "metrics": metrics,
        "state": {"testRunDurationMs": duration_s * 1000},
        "hardening": {"merged_from_instances": len(summaries), "computed_from": RunLayout.SAMPLES},
    }


# -------------------------------------------------------------------------------- the run's merged result
@dataclass
class Merged:
    """What :func:`merge` made of the instances' outputs."""

    stats: IngestStats | None  # the merged samples (RunLayout.samples; None: not written)
    instances: list[InstanceSummary]
    warnings: list[str] = field(default_factory=list)


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _crossed(summary: Mapping[str, Any]) -> list[str]:
    """``"key expr"`` of every threshold k6 said failed (summary export: ``thresholds: {expr: failed}``)."""
    out = []
    for key, entry in (summary.get("metrics") or {}).items():
        if isinstance(entry, Mapping):
            out += [f"{key} {expr}" for expr, failed in (entry.get("thresholds") or {}).items() if failed]
    return out


def instance_summary(inst: Instance, summary: Mapping[str, Any] | None, root: Path) -> InstanceSummary:
    """k6's own figures of one instance (its segment), for the record and the console."""
    out = InstanceSummary(instance=inst.index, segment=inst.segment, exit_code=inst.exit_code,
                          exit_meaning=k6mod.exit_meaning(inst.exit_code) if inst.exit_code is not None else None)
    if summary is not None:
        m = key_metrics(dict(summary))
        out.requests, out.rps, out.error_rate, out.iterations = m.requests, m.rps, m.error_rate, m.iterations
        out.p95_ms = (m.http_req_duration or {}).get("p(95)") if m.requests else None
        out.thresholds_crossed = _crossed(summary)
        out.summary = str(inst.run.summary_path.relative_to(root.resolve()))
    return out


def merge(result: GroupResult, layout: RunLayout, *, trend_stats: str, submetrics: Iterable[str],
          keep_raw: bool) -> Merged:
    """Merge the instances' raw outputs into the record's samples (``RunLayout.samples``, streaming), write
    the whole test's summary, computed from those samples, as ``RunLayout.k6_summary``, and describe each
    instance."""
    warnings: list[str] = []
    summaries: list[dict[str, Any]] = []
    described = []
    for inst in result.instances:
        summary = _read_summary(inst.run.summary_path)
        described.append(instance_summary(inst, summary, layout.root))
        if summary is None:
            warnings.append(f"instance {inst.index} ({inst.segment}) wrote no readable k6 summary "
                            f"(k6 {k6mod.exit_meaning(inst.exit_code) if inst.exit_code is not None else 'not run'})")
        else:
            summaries.append(summary)
    for inst, d in zip(result.instances, described, strict=True):
        if inst.ends_test:
            why = ("an abortOnFail threshold was crossed on its segment" if inst.aborted_on_fail
                   else f"k6 {d.exit_meaning}")
            crossed = f" ({'; '.join(d.thresholds_crossed)})" if inst.aborted_on_fail and d.thresholds_crossed else ""
            warnings.append(f"instance {inst.index} ({inst.segment}) ended the test: {why}{crossed}; the other "
                            "instances were stopped (SIGINT)")
        elif inst.exit_code == 99:
            crossed = '; '.join(d.thresholds_crossed) or f"see {layout.k6_log.name}"
            warnings.append(f"instance {inst.index} ({inst.segment}): k6 said thresholds crossed on its own segment "
                            f"({crossed}); the verdict is on the whole test, from every instance's samples")
    if len(summaries) < len(result.instances) and result.trigger is None and not result.interrupted:
        warnings.append("the whole test's summary lacks the instances that wrote none")

    raws = [i.run.raw_path for i in result.instances if i.run.raw_path.is_file() and i.run.raw_path.stat().st_size]
    stats = None
    if raws:
        try:
            stats = ingest_k6_outputs(raws, layout.samples)
        except HardeningError as exc:  # keep the raw files in the record rather than lose the run
            warnings.append(f"raw samples not ingested, the instances' {RunLayout.K6_RAW} kept: {exc}")
            return Merged(None, described, warnings)
        durations = [d for d in map(k6_test_seconds, summaries) if d]
        duration = max(durations) if durations else result.seconds
        stats_list = [s.strip() for s in trend_stats.split(",") if s.strip()]
        whole = whole_summary(layout.samples, summaries, metric_types=stats.metric_types, trend_stats=stats_list,
                              duration_s=duration, submetrics=submetrics)
        write_json(layout.k6_summary, whole)
        if not keep_raw:
            for raw in raws:
                raw.unlink(missing_ok=True)
    return Merged(stats, described, warnings)


def console_lines(instances: Sequence[InstanceSummary]) -> str:
    """The per-instance block printed after the run's summary: k6's own figures per segment."""
    lines = ["Instances (k6's own summary of each segment; the run's figures above are of the whole test):"]
    for d in instances:
        p95 = "n/a" if d.p95_ms is None else f"{d.p95_ms:,.2f} ms"
        err = "n/a" if d.error_rate is None else f"{d.error_rate * 100:.2f}%"
        lines.append(f"  instance {d.instance} [{d.segment}]: {d.requests:,} requests, {d.rps:,.2f} req/s, "
                     f"p95 {p95}, errors {err}, {d.iterations:,} iterations, k6 exit {d.exit_code} "
                     f"({d.exit_meaning})")
    return "\n".join(lines)


def print_instances(instances: Sequence[InstanceSummary] | None) -> None:
    if instances:
        print(console_lines(instances), file=sys.stdout)
