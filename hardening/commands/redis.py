"""``hardening redis``: the seed's redis-observability.js as subcommands.

- ``enable-monitoring MS``: CONFIG SET latency-monitor-threshold MS and slowlog-log-slower-than MS*1000 µs.
- ``capture-before`` / ``capture-after``: snapshots (default loadtest/redis-metrics-{before,after}.json).
- ``generate-report``: the markdown report and the comparison JSON (``DEFAULT_REPORT``, ``DEFAULT_COMPARISON``).

The server comes from ``--url`` (default ``$REDIS_URL``); ``rediss://`` and passwords work; passwords are
never printed or written. Exit codes: 0 ok, 2 usage (no URL, unreadable input file, Redis refusing the
credentials in the URL), 3 Redis unreachable or CONFIG not available.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from hardening.errors import ConfigError, InfraError
from hardening.masking import mask, mask_url
from hardening.record.layout import RedisLayout
from hardening.redisobs import Collector, compare, render
from hardening.redisobs.connection import ToolClient, decode, split_urls
from hardening.redisobs.observe import write_json, write_text

# The seed's own file names for these commands (not a run record's: the record's are RedisLayout's)
DEFAULT_BEFORE = Path("loadtest/redis-metrics-before.json")
DEFAULT_AFTER = Path("loadtest/redis-metrics-after.json")
DEFAULT_REPORT = Path("loadtest") / RedisLayout.REPORT_MD
DEFAULT_COMPARISON = Path("loadtest/redis-comparison.json")


def _url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("REDIS_URL")
    if not url:
        raise ConfigError("no Redis server given: set REDIS_URL (e.g. redis://127.0.0.1:6379/0) or pass --url")
    for part in split_urls(url):
        if not part.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"not a Redis URL: {mask_url(part)} (use redis://, rediss:// or unix://)")
    return url


def _refused(url: str, exc: redis.AuthenticationError) -> ConfigError:
    return ConfigError(f"Redis {mask_url(url)} refused the credentials in the URL ({exc}). Fix the user name or "
                       "password in REDIS_URL / --url (redis://user:password@host:port/db).")


def _check_credentials(url: str, timeout: float) -> None:
    """After a failure: a ConfigError (exit 2) if some node refused the URL's credentials (wrong or missing
    password, unknown user), rather than calling the server unreachable (exit 3). Probed only when
    something already failed, so a successful capture sends nothing extra."""
    for seed in split_urls(url):
        client = ToolClient(seed, timeout)
        try:
            client.call("PING")
        except redis.AuthenticationError as exc:
            raise _refused(seed, exc) from exc
        except (redis.RedisError, OSError):
            continue
        finally:
            client.close()


def _url_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None,
                   help="Redis URL, or comma-separated seed nodes of a cluster (default $REDIS_URL)")
    p.add_argument("--timeout", type=float, default=2.0, help="socket timeout in seconds (default 2)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "redis", help="Redis latency monitoring, before/after snapshots and the observability report",
        description="Exit codes: 0 ok, 2 usage/config error (also: Redis refused the credentials in the URL), "
        "3 Redis unreachable or CONFIG unavailable.")
    sub = p.add_subparsers(dest="redis_command", metavar="SUBCOMMAND", required=True)

    e = sub.add_parser("enable-monitoring", help="set latency-monitor-threshold (ms) and a matching slowlog threshold")
    e.add_argument("threshold_ms", type=int, metavar="MS", help="latency threshold in milliseconds (0 turns it off)")
    _url_arg(e)
    e.set_defaults(func=cmd_enable_monitoring)

    for name, default in (("capture-before", DEFAULT_BEFORE), ("capture-after", DEFAULT_AFTER)):
        c = sub.add_parser(name, help=f"snapshot the server (default {default})")
        _url_arg(c)
        c.add_argument("--out", type=Path, default=default, help=f"output JSON (default {default})")
        c.add_argument("--include-args", action="store_true",
                       help="keep slowlog key names and argument lengths (values are never stored)")
        c.set_defaults(func=cmd_capture)

    g = sub.add_parser("generate-report", help="compare before/after and write the markdown report + JSON")
    g.add_argument("--before", type=Path, default=DEFAULT_BEFORE, help=f"(default {DEFAULT_BEFORE})")
    g.add_argument("--after", type=Path, default=DEFAULT_AFTER, help=f"(default {DEFAULT_AFTER})")
    g.add_argument("--timeline", type=Path, default=None, help=f"{RedisLayout.TIMELINE} from a sampler (optional)")
    g.add_argument("--report", type=Path, default=DEFAULT_REPORT, help=f"(default {DEFAULT_REPORT})")
    g.add_argument("--comparison", type=Path, default=DEFAULT_COMPARISON, help=f"(default {DEFAULT_COMPARISON})")
    g.set_defaults(func=cmd_generate_report)


def cmd_enable_monitoring(args: argparse.Namespace) -> int:
    if args.threshold_ms < 0:
        raise ConfigError("MS must be >= 0 (0 turns the latency monitor off)")
    url = _url(args)
    slowlog_us = args.threshold_ms * 1000 if args.threshold_ms else 10000
    wanted = {"latency-monitor-threshold": str(args.threshold_ms), "slowlog-log-slower-than": str(slowlog_us)}
    collector = Collector(url, timeout=args.timeout)
    try:
        nodes = collector.discover()
        if not nodes:
            _check_credentials(url, args.timeout)
            raise InfraError("cannot reach Redis: " + "; ".join(collector.discovery_errors))
        for node in nodes:
            client = collector.client(node)
            if client.call("COMMAND", "INFO", "config")[0] is None:   # renamed away: do not send it
                raise redis.ResponseError("unknown command 'CONFIG' (renamed or disabled on this server)")
            for param, value in wanted.items():
                old = _config_get(client, param)
                client.call("CONFIG", "SET", param, value)
                print(f"{client.address}: {param} {old} -> {value}")
    except redis.AuthenticationError as exc:  # a node of a cluster refused the credentials
        raise _refused(url, exc) from exc
    except redis.ResponseError as exc:
        raise InfraError(f"cannot change the configuration of {mask_url(url)}: {exc}. Managed services "
                         "(ElastiCache, Memorystore, Azure) disable CONFIG: set latency-monitor-threshold and "
                         "slowlog-log-slower-than in the provider's parameter group instead.") from exc
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise InfraError(f"cannot reach Redis at {mask_url(url)}: {exc}") from exc
    finally:
        collector.close()
    return 0


def _config_get(client: ToolClient, param: str) -> str:
    reply = client.call("CONFIG", "GET", param)
    return decode(reply[1]) if len(reply) >= 2 else "?"


def cmd_capture(args: argparse.Namespace) -> int:
    url = _url(args)
    collector = Collector(url, timeout=args.timeout, include_args=args.include_args)
    try:
        snap = collector.snapshot()
    finally:
        collector.close()
    if snap.get("error"):
        _check_credentials(url, args.timeout)
        raise InfraError(f"cannot capture Redis at {mask_url(url)}: {snap['error']}")
    _write(args.out, "--out", lambda: write_json(args.out, snap))
    server = snap["server"]
    missing = sorted({p for n in snap["nodes"] for p in n.get("unavailable", {})})
    print(f"captured {server['kind']} {server['version']} ({snap['mode']}, {len(snap['nodes'])} node(s)) "
          f"in {snap['duration_ms']:.0f} ms -> {args.out}")
    if missing:
        print("not available: " + ", ".join(missing) + " (reasons in the file)")
    return 0


def _load(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} snapshot {path} not found: run `hardening redis capture-{what}` first") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {what} snapshot {path}: {exc}") from exc
    if not isinstance(data, dict) or "nodes" not in data:
        raise ConfigError(f"{path} is not a snapshot written by `hardening redis capture-{what}`")
    return data


def _write(path: Path, option: str, write: Callable[[], None]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write()
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}. Choose a writable path with {option}.") from exc


def cmd_generate_report(args: argparse.Namespace) -> int:
    from hardening.redisobs.sampler import read_timeline

    before, after = _load(args.before, "before"), _load(args.after, "after")
    timeline = read_timeline(args.timeline) if args.timeline else []
    comparison = compare(before, after, timeline)
    _write(args.comparison, "--comparison", lambda: write_json(args.comparison, comparison))
    _write(args.report, "--report", lambda: write_text(args.report, render(comparison)))
    agg = comparison["aggregate"]
    ops = agg.get("ops_per_sec")
    print(mask(f"ops/s {ops:,.1f} over {agg['window']['seconds']:.1f} s; "
               f"{len(comparison['recommendations'])} recommendation(s)" if ops is not None
               else f"comparison incomplete: {agg.get('error')}"))
    print(f"wrote {args.report} and {args.comparison}")
    return 0
