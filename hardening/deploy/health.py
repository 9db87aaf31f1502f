"""Health checks after a deploy: grace period, N consecutive successes, capped exponential backoff with
jitter, an overall deadline and a maximum number of attempts (the seed's 20).

A probe is healthy when the URL answers 200 and, when ``expect_version`` is set, the JSON body's
``version`` equals it (so an old process still holding the port does not pass for the new release).
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from hardening.errors import ConfigError
from hardening.masking import mask


@dataclass(frozen=True)
class HealthPolicy:
    grace_s: float = 5.0          # wait before the first probe (the process is starting)
    interval_s: float = 2.0       # base wait between probes
    max_interval_s: float = 15.0  # cap of the exponential backoff
    backoff: float = 2.0          # factor per consecutive failure
    jitter: float = 0.2           # +/- fraction of randomness on every wait
    successes: int = 3            # consecutive healthy probes needed
    deadline_s: float = 180.0     # give up after this long (grace included)
    max_attempts: int = 20        # the seed's "max 20 attempts"
    timeout_s: float = 5.0        # per-probe HTTP timeout

    def __post_init__(self) -> None:
        if self.successes < 1 or self.max_attempts < 1:
            raise ConfigError("health check: --health-successes and --health-attempts must be >= 1")
        if self.successes > self.max_attempts:
            raise ConfigError("health check: --health-successes cannot exceed --health-attempts")
        if min(self.grace_s, self.interval_s, self.deadline_s, self.timeout_s) < 0 or self.backoff < 1:
            raise ConfigError("health check: times must be >= 0 and --health-backoff >= 1")
        if not 0 <= self.jitter < 1:
            raise ConfigError("health check: --health-jitter must be in [0, 1)")


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str
    version: str | None = None


@dataclass
class HealthResult:
    ok: bool
    attempts: int = 0
    consecutive: int = 0
    elapsed_s: float = 0.0
    reason: str = ""
    last_detail: str = ""
    log: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verdict = "healthy" if self.ok else "UNHEALTHY"
        return f"{verdict} after {self.attempts} attempt(s) in {self.elapsed_s:.1f}s: {self.reason}"


def http_probe(url: str, timeout_s: float, expect_version: str | None = None) -> Probe:
    """GET ``url``; healthy on 200 (and the expected version, when given)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            status, body = resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        return Probe(False, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return Probe(False, f"unreachable: {mask(str(reason))}")
    version = None
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("version") is not None:
            version = str(data["version"])
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    if status != 200:
        return Probe(False, f"HTTP {status}", version)
    if expect_version and version != expect_version:
        return Probe(False, f"HTTP 200 but version {version!r}, expected {expect_version!r}", version)
    return Probe(True, "HTTP 200" + (f" version {version}" if version else ""), version)


def wait_healthy(
    url: str,
    policy: HealthPolicy,
    *,
    expect_version: str | None = None,
    probe: Callable[[], Probe] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    progress: Callable[[str], None] | None = None,
) -> HealthResult:
    """Probe until ``policy.successes`` consecutive successes, or give up at the deadline / max attempts."""
    rng = rng or random.Random()
    do_probe = probe or (lambda: http_probe(url, policy.timeout_s, expect_version))
    start = clock()
    result = HealthResult(ok=False)

    def say(line: str) -> None:
        result.log.append(line)
        if progress:
            progress(line)

    if policy.grace_s:
        say(f"grace period {policy.grace_s:g}s before the first probe of {mask(url)}")
        sleep(policy.grace_s)
    failures = 0
    while result.attempts < policy.max_attempts:
        result.attempts += 1
        outcome = do_probe()
        result.last_detail = outcome.detail
        if outcome.ok:
            result.consecutive += 1
            failures = 0
        else:
            result.consecutive = 0
            failures += 1
        say(f"attempt {result.attempts}/{policy.max_attempts}: {'ok' if outcome.ok else 'fail'} "
            f"({outcome.detail}); {result.consecutive}/{policy.successes} consecutive")
        if result.consecutive >= policy.successes:
            result.ok = True
            result.reason = f"{policy.successes} consecutive healthy probes"
            break
        if result.attempts >= policy.max_attempts:
            result.reason = f"{policy.max_attempts} attempts used; last probe: {outcome.detail}"
            break
        wait = min(policy.max_interval_s, policy.interval_s * policy.backoff ** max(failures - 1, 0))
        wait *= 1 + rng.uniform(-policy.jitter, policy.jitter)
        if clock() - start + wait > policy.deadline_s:
            result.reason = f"deadline {policy.deadline_s:g}s reached; last probe: {outcome.detail}"
            break
        sleep(wait)
    result.elapsed_s = clock() - start
    return result
