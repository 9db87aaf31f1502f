"""Lifetime of the processes a command starts (k6, embedded Redis, the demo service).

``STOP_SIGNALS`` is the command-wide policy for Ctrl-C/SIGTERM/SIGHUP that keeps every child stoppable
and every partial run record intact (see ``StopSignals``); ``STOP_SIGNALS.spawn`` starts a child that cannot
outlive the block that started it; ``stop_process`` stops a child by its pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), resolved once here: a child between fork and exec must not look it up."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # this process's own symbols, libc's among them
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``Popen`` (called in the spawning thread) that makes the kernel send ``sig`` to the
    child when this process dies, even by SIGKILL, which no handler sees; if this process is already gone when
    it runs, the child exits before ``exec``. ``None`` where the kernel offers no such signal (not Linux)."""
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def stop_process(proc: subprocess.Popen | None, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop a child we started, by its pid: ``sig`` (SIGTERM), wait ``grace`` seconds, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class _Spawned:
    proc: subprocess.Popen
    depth: int  # the ``with STOP_SIGNALS`` nesting it was started in: it is stopped when that block ends
    stop_signal: int
    grace: float


class StopSignals:
    """What Ctrl-C (SIGINT), SIGTERM and SIGHUP do during a command; main thread only.

    While k6 runs, a signal is forwarded to it as SIGINT (k6 runs in its own session, so a terminal's
    Ctrl-C reaches only us): the first stops k6 gracefully with its summary, a second makes k6 abort
    at once. Outside a k6 run the first signal raises ``KeyboardInterrupt``, so ``with`` blocks stop the
    embedded Redis and the demo service (SIGTERM/SIGHUP would otherwise kill us and leave them
    running). Once a stop is under way (k6 interrupted, or cleanup started), further signals are
    ignored so the partial run record and the cleanup complete; every step of them is bounded in time.

    A child started with ``spawn`` cannot outlive the ``with STOP_SIGNALS`` block it was started in: starting
    and registering it is atomic with respect to these signals, whatever ends the block stops it if it still
    runs, and the kernel kills it if this process dies without running any handler (SIGKILL).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.stopping = False
        self._child: subprocess.Popen | None = None
        self._forwarded = threading.Event()
        self._previous: dict[int, object] = {}
        self._depth = 0
        self._deferring = 0
        self._pending = False
        self._spawned: list[_Spawned] = []

    def __enter__(self) -> StopSignals:
        if self._depth == 0:
            self.stopping = self._pending = False
            if threading.current_thread() is threading.main_thread():
                self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            with self.deferred():  # a signal meanwhile raises only once the children are stopped
                self._stop_spawned(self._depth)
        finally:
            if self._depth == 0:
                for sig, handler in self._previous.items():
                    signal.signal(sig, handler)
                self._previous = {}

    def spawn(self, cmd: Sequence[str], *, stop_signal: int = signal.SIGTERM, grace: float = 15.0,
              **popen_kwargs: object) -> subprocess.Popen:
        """``subprocess.Popen(cmd, **popen_kwargs)`` for a child that cannot outlive the enclosing
        ``with STOP_SIGNALS`` block: a stop signal during the start is held until the child is registered;
        when the block ends (normally, by an error or by an interrupt) a child still running gets
        ``stop_signal``, then SIGKILL after ``grace`` seconds; if this process is killed outright, the kernel
        sends the child SIGKILL (Linux ``PR_SET_PDEATHSIG``). OSError (cannot execute) propagates."""
        if self._depth == 0:
            raise RuntimeError("STOP_SIGNALS.spawn() must be called inside `with STOP_SIGNALS:`")
        if threading.current_thread() is threading.main_thread():  # the death signal follows the spawning thread
            popen_kwargs.setdefault("preexec_fn", die_with_parent())
        with self.deferred():
            proc = subprocess.Popen(cmd, **popen_kwargs)  # type: ignore[call-overload]
            self._spawned.append(_Spawned(proc, self._depth, stop_signal, grace))
        return proc

    def _stop_spawned(self, depth: int) -> None:
        """Stop (and forget) the children spawned in blocks deeper than ``depth``; signals are ignored meanwhile."""
        mine = [s for s in self._spawned if s.depth > depth]
        self._spawned = [s for s in self._spawned if s.depth <= depth]
        running = [s for s in mine if s.proc.poll() is None]
        if not running:
            return
        self.stopping = True  # a signal now must not cut the stop short (each step is bounded in time)
        for s in running:
            with contextlib.suppress(ProcessLookupError):
                s.proc.send_signal(s.stop_signal)
        deadline = time.monotonic() + max(s.grace for s in running)
        for s in running:
            try:
                s.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait(timeout=5)

    @contextlib.contextmanager
    def forwarding_to(self, proc: subprocess.Popen):
        """Forward stop signals to ``proc`` inside the block; yields an Event set when one was forwarded."""
        with self:
            self._child, self._forwarded = proc, threading.Event()
            try:
                yield self._forwarded
            finally:
                self._child = None

    @contextlib.contextmanager
    def deferred(self):
        """Hold a stop signal until the block ends: around ``Popen``, so a child is never started with its
        pid lost to an interrupt (it would run on, unstopped, in its own session). Signals are handled in the
        main thread only: elsewhere this holds nothing (and never raises another thread's interrupt)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self._pending and not self._deferring:
            self._pending = False
            raise KeyboardInterrupt

    def _handle(self, signum: int, _frame: object) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            self.stopping = True
            self._forwarded.set()
            child.send_signal(signal.SIGINT)
            return
        if self._deferring and not self.stopping:
            self.stopping = self._pending = True
            return
        if self.stopping:
            print(f"hardening: {signal.Signals(signum).name} ignored: finishing the partial record and "
                  "stopping what was started", file=sys.stderr)
            return
        self.stopping = True
        raise KeyboardInterrupt


STOP_SIGNALS = StopSignals()
