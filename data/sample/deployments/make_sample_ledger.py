"""Regenerate ``ledger.jsonl`` beside this script: a realistic deployment history for the notebooks.

Six weeks of deploys of ``backend`` and ``frontend`` to staging (branch pinithi) and production (main),
written through ``hardening.deploy.ledger.Ledger`` exactly as ``hardening deploy`` writes it: an ``in_progress``
line, then ``green`` or ``failed``; a failed deploy is followed by an automatic rollback (a new deployment
with ``rollback_of``) and its own ``rolled_back`` line; a few manual rollbacks too. Deterministic (seeded).

Run: ``.venv/bin/python data/sample/deployments/make_sample_ledger.py``
"""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hardening.deploy.ledger import Deployment, Ledger

HERE = Path(__file__).resolve().parent
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
WEEKS = 6
ACTORS = ["pinithi", "octocat", "mona", "hubot"]
REASONS = [
    "health check failed: 20 attempts used; last probe: HTTP 503",
    "health check failed: deadline 180s reached; last probe: unreachable: Connection refused",
    "post-deploy check `hardening loadtest --profile quick` exited 1",
    "deploy step failed: `railway up` exited 1: build failed",
]


def iso(t: datetime) -> str:
    return t.isoformat()


def dep_id(t: datetime, rng: random.Random) -> str:
    return f"dep-{t:%Y%m%d%H%M%S}-{rng.getrandbits(16):04x}"


def main(out: Path = HERE / "ledger.jsonl", seed: int = 20260105) -> Path:
    rng = random.Random(seed)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    ledger = Ledger(tmp)
    live: dict[tuple[str, str], Deployment] = {}
    t = START
    end = START + timedelta(weeks=WEEKS)
    while t < end:
        t += timedelta(hours=rng.uniform(4, 20))
        if t.weekday() >= 5:  # quiet weekends
            continue
        service = rng.choice(["backend", "backend", "frontend"])
        commit = hashlib.sha1(f"{seed}{t}".encode()).hexdigest()
        commit_time = t - timedelta(minutes=rng.uniform(12, 240))
        actor = rng.choice(ACTORS)
        # A change goes to staging first, then (usually) to production a little later.
        envs = ["staging"] + (["production"] if rng.random() < 0.7 else [])
        when = t
        for env in envs:
            version = f"{service}-{commit_time:%Y%m%d-%H%M%S}-{commit[:7]}"
            fail_p = 0.22 if env == "staging" else 0.12
            prev = live.get((env, service))
            dep = Deployment(id=dep_id(when, rng), env=env, service=service, version=version, commit=commit,
                             commit_time=iso(commit_time), started_at=iso(when), previous=prev.id if prev else None,
                             actor=actor, backend="railway" if service == "backend" else "vercel")
            ledger.append(dep)
            finished = when + timedelta(seconds=rng.uniform(70, 420))
            if prev is None or rng.random() > fail_p:
                ledger.update(dep, status="green", finished_at=iso(finished))
                live[(env, service)] = dep
            else:
                reason = rng.choice(REASONS)
                ledger.update(dep, status="failed", finished_at=iso(finished), reason=reason)
                rb_start = finished + timedelta(seconds=rng.uniform(5, 40))
                rb = Deployment(id=dep_id(rb_start, rng), env=env, service=service, version=prev.version,
                                commit=prev.commit, commit_time=prev.commit_time, started_at=iso(rb_start),
                                previous=dep.id, rollback_of=dep.id, reason=f"automatic: {reason}", actor=actor,
                                backend=dep.backend)
                ledger.append(rb)
                ledger.update(rb, status="green", finished_at=iso(rb_start + timedelta(seconds=rng.uniform(40, 150))))
                ledger.update(dep, status="rolled_back",
                              incident=f"data/deployments/incidents/{dep.id}.md")
                live[(env, service)] = rb
                break  # a failed change is not promoted further
            when = finished + timedelta(hours=rng.uniform(1, 26))
        # Now and then someone rolls production back by hand (a bad change found later).
        current = live.get(("production", "backend"))
        if current and current.rollback_of is None and rng.random() < 0.05:
            manual_at = when + timedelta(hours=rng.uniform(2, 8))
            earlier = [d for d in ledger.history("production", "backend")
                       if d.status == "green" and d.version != current.version]
            if earlier:
                target = earlier[-1]
                rb = Deployment(id=dep_id(manual_at, rng), env="production", service="backend",
                                version=target.version, commit=target.commit, commit_time=target.commit_time,
                                started_at=iso(manual_at), previous=current.id, rollback_of=current.id,
                                reason="manual rollback", actor=rng.choice(ACTORS), backend="railway")
                ledger.append(rb)
                ledger.update(rb, status="green", finished_at=iso(manual_at + timedelta(seconds=95)))
                ledger.update(current, status="rolled_back", reason=f"manual rollback (replaced by {rb.id})")
                live[("production", "backend")] = rb
    os.replace(tmp, out)
    return out


if __name__ == "__main__":
    path = main()
    states = Ledger(path).states()
    print(f"{path}: {len(states)} deployments, "
          f"{sum(d.status == 'rolled_back' for d in states)} rolled back, "
          f"{sum(d.rollback_of is not None for d in states)} rollbacks")
