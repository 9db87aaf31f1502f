"""The collector's own Redis connection: quiet, counted, and never leaking the password.

- ``protocol=2`` and ``driver_info=None``: no ``HELLO`` and no ``CLIENT SETINFO`` in the handshake, so on
  servers older than 7.2 the tool adds nothing to ``errorstats`` / ``total_error_replies``.
- One connection per client (``single_connection_client``), no retries, short timeouts: a dead server
  costs one timeout, not a retry storm.
- Every command the tool sends is counted by name (``info``, ``config|get``, ...) so rates can subtract
  the collector's own traffic. Commands the server rejects as unknown are not counted: the server does
  not count them in ``total_commands_processed`` either.
- The pool's ``connection_kwargs`` hold the password in clear text: nothing here ever serializes the
  client; records carry ``masked_url`` only.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hardening.errors import ConfigError
from hardening.masking import mask_url

TOOL_CLIENT_NAME = "hardening-redisobs"
# Commands with subcommands: Redis 7+ reports them in commandstats as "config|get".
CONTAINER_COMMANDS = frozenset({
    "acl", "client", "cluster", "command", "config", "function", "latency", "memory", "module", "object",
    "pubsub", "script", "slowlog", "xinfo", "xgroup",
})


def split_urls(url: str) -> list[str]:
    """``redis://a:7001,redis://b:7002`` or ``redis://a:7001,b:7002`` -> one URL per seed node."""
    parts = [p.strip() for p in url.split(",") if p.strip()]
    if not parts:
        return []
    first = urlsplit(parts[0])
    out = [parts[0]]
    for p in parts[1:]:
        out.append(p if "://" in p else node_url(parts[0], p) if first.scheme else p)
    return out


def validated_urls(url: str, flag: str = "REDIS_URL / --redis-url") -> list[str]:
    """The seed URLs of ``url``; ConfigError (exit 2) naming ``flag`` when one is not a Redis URL."""
    seeds = split_urls(url)
    for seed in seeds:
        if not seed.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"not a Redis URL in {flag}: {mask_url(seed)!r}. Use redis://host:port/db, with "
                              "credentials before the host, rediss:// for TLS, comma-separated seed nodes for "
                              "a cluster, or unix:///path/to/socket.")
    if not seeds:
        raise ConfigError(f"empty Redis URL in {flag}: use e.g. redis://127.0.0.1:6379/0")
    return seeds


def node_url(base_url: str, address: str) -> str:
    """``base_url`` pointed at ``host:port`` (scheme, credentials, db and query kept)."""
    parts = urlsplit(base_url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{address}" if userinfo else address
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def address_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def command_key(args: tuple[Any, ...]) -> str:
    """commandstats-style name of a command: ``info``, ``config|get``."""
    name = str(args[0]).lower()
    if name in CONTAINER_COMMANDS and len(args) > 1:
        return f"{name}|{str(args[1]).lower()}"
    return name


class ToolClient:
    """A counted, single-connection client for the collector (not thread-safe: one per thread)."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        self.address = address_of(url)
        self.sent: Counter[str] = Counter()
        self.connects = 0
        self._timeout = timeout
        self._redis: redis.Redis | None = None
        parts = urlsplit(url)
        db = (parts.path or "/0").strip("/") or "0"
        self._handshake = ["client|setname"]
        if parts.password:
            self._handshake.insert(0, "auth")
        if db != "0":
            self._handshake.append("select")

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.url, protocol=2, driver_info=None, client_name=TOOL_CLIENT_NAME,
                single_connection_client=True, socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout, health_check_interval=0,
                retry=Retry(NoBackoff(), 0), decode_responses=False,
            )
            self._redis.response_callbacks.clear()   # raw replies: we parse INFO ourselves
            self._count_handshake()
        return self._redis

    def _count_handshake(self) -> None:
        self.connects += 1
        for name in self._handshake:
            self.sent[name] += 1

    def call(self, *args: Any) -> Any:
        """Send one command; raises redis exceptions (callers record them per probe).

        A connection that died since the last call (server restarted) is replaced once.
        """
        fresh = self._redis is None
        try:
            return self._call_once(args)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            if fresh:
                raise
            return self._call_once(args)

    def _call_once(self, args: tuple[Any, ...]) -> Any:
        key = command_key(args)
        client = self._client()
        self.sent[key] += 1
        try:
            return client.execute_command(*args)
        except redis.ResponseError as exc:
            if str(exc).lower().startswith("unknown command"):
                self.sent[key] -= 1
            raise
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self.sent[key] -= 1
            self.close()
            raise

    def total_sent(self) -> int:
        return sum(self.sent.values())

    def close(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.close()
            self._redis = None

    def __repr__(self) -> str:  # never show kwargs (password) in logs or tracebacks
        return f"ToolClient({self.masked_url})"


def now_pair() -> tuple[float, float]:
    """(UTC epoch seconds, client monotonic seconds) taken together."""
    return time.time(), time.monotonic()


def decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
