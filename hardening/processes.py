"""Lifetime of the processes a command starts (k6, embedded Redis, the demo service).

``STOP_SIGNALS`` is the command-wide policy for Ctrl-C/SIGTERM/SIGHUP that keeps every child stoppable
and every partial run record intact (see ``StopSignals``); ``stop_process`` stops a child by its pid.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading


def stop_process(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """Stop a child we started, by its pid: SIGTERM, wait ``grace`` seconds, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class StopSignals:
    """What Ctrl-C (SIGINT), SIGTERM and SIGHUP do during a command; main thread only.

    While k6 runs, a signal is forwarded to it as SIGINT (k6 runs in its own session, so a terminal's
    Ctrl-C reaches only us): the first stops k6 gracefully with its summary, a second makes k6 abort
    at once. Outside a k6 run the first signal raises ``KeyboardInterrupt``, so ``with`` blocks stop the
    embedded Redis and the demo service (SIGTERM/SIGHUP would otherwise kill us and leave them
    running). Once a stop is under way (k6 interrupted, or cleanup started), further signals are
    ignored so the partial run record and the cleanup complete; every step of them is bounded in time.
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

    def __enter__(self) -> StopSignals:
        if self._depth == 0:
            self.stopping = self._pending = False
            if threading.current_thread() is threading.main_thread():
                self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._previous = {}

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
        pid lost to an interrupt (it would run on, unstopped, in its own session)."""
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
