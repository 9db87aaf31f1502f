"""The service under test: a small async payments API backed by Redis (the seed's payments backend).

Routes (all JSON):

- ``GET /health``: PING to Redis. 200 ``{"status": "ok", "version": V, "redis": "ok"}``; 503 when Redis
  does not answer or the ``unhealthy`` fault knob is on.
- ``GET /version``: ``{"version": V}``.
- ``POST /api/payments``: validates ``{"amount": >0, "currency": "EUR", "customer_id": "..."}``
  (400 for a body that is not a JSON object, 422 for a bad field), then in one MULTI/EXEC stores the hash
  ``payment:<id>``, LPUSHes a job to ``queue:jobs`` (LTRIMmed to ``DEMO_QUEUE_MAX``) and ZADDs the id to
  ``payments:by_time``. 201 ``{"id": ..., "status": "accepted"}``.
- ``GET /api/payments/{id}``: 200 with the stored payment, or 404.
- ``GET /api/queue/stats``: ``{"queue": "queue:jobs", "length": LLEN, "max_length": .., "payments_indexed": ZCARD}``.
- ``GET /admin/faults`` / ``POST /admin/faults``: read or change the fault knobs at runtime.

Fault knobs (read from the environment at start, changeable through ``/admin/faults``):
``DEMO_FAULT_LATENCY_MS`` (added with ``asyncio.sleep`` to every ``/api/*`` request),
``DEMO_FAULT_ERROR_RATE`` (0..1: probability that an ``/api/*`` request answers 500; drawn from a
``random.Random`` seeded with ``DEMO_FAULT_SEED``, so runs are reproducible; 1.0 fails every request),
``DEMO_FAULT_UNHEALTHY`` (1/0: ``/health`` answers 503). ``DEMO_VERSION`` names the version.

The admin routes have no authentication: they are served on the same socket as the API, which binds to
loopback only (a non-loopback ``--host`` needs ``--allow-external``, and even then ``/admin/*`` answers
403 to any client that is not on loopback).

Run it: ``python -m hardening.demo.service --host 127.0.0.1 --port 8080 --redis-url redis://127.0.0.1:6379/0``
(``REDIS_URL`` is the fallback for ``--redis-url``; prefer it when the URL holds a password, since the
command line is visible to every user of the machine). ``DemoService`` starts it as a subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import hardening
from hardening.errors import EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, ConfigError, InfraError
from hardening.masking import mask, mask_url, secret_values
from hardening.net import free_port
from hardening.processes import STOP_SIGNALS, die_with_parent, stop_process
from hardening.redisobs.connection import validated_urls

log = logging.getLogger("hardening.demo.service")

QUEUE_KEY = "queue:jobs"
BY_TIME_KEY = "payments:by_time"
PAYMENT_KEY = "payment:{id}"
PAYMENT_TTL_S = 3600  # hashes expire and the time index is trimmed to the same window: bounded memory
DEFAULT_QUEUE_MAX = 10_000
DEFAULT_SEED = 42
MAX_BODY_BYTES = 16 * 1024
MAX_LATENCY_MS = 60_000
MAX_CUSTOMER_ID = 128
HEALTH_TIMEOUT_S = 2.0
PAYMENT_ID = re.compile(r"[0-9a-f]{32}")
CURRENCY = re.compile(r"[A-Za-z]{3}")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


# --------------------------------------------------------------------------------------------- knobs
@dataclass
class Faults:
    """The fault knobs. ``update`` validates like the env parser: a bad value changes nothing."""

    latency_ms: int = 0
    error_rate: float = 0.0
    unhealthy: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Faults:
        faults = cls()
        raw: dict[str, Any] = {}
        if (v := env.get("DEMO_FAULT_LATENCY_MS", "").strip()) != "":
            try:
                raw["latency_ms"] = int(v)
            except ValueError:
                raise ConfigError(f"DEMO_FAULT_LATENCY_MS={v!r}: expected an integer number of ms") from None
        if (v := env.get("DEMO_FAULT_ERROR_RATE", "").strip()) != "":
            try:
                raw["error_rate"] = float(v)
            except ValueError:
                raise ConfigError(f"DEMO_FAULT_ERROR_RATE={v!r}: expected a number from 0 to 1") from None
        v = env.get("DEMO_FAULT_UNHEALTHY", "").strip().lower()
        if v not in TRUE_WORDS | FALSE_WORDS:
            raise ConfigError(f"DEMO_FAULT_UNHEALTHY={v!r}: expected 1 or 0 (true/false)")
        raw["unhealthy"] = v in TRUE_WORDS
        errors = faults.update(raw)
        if errors:
            raise ConfigError("bad fault knob in the environment: " + "; ".join(
                f"DEMO_FAULT_{e['field'].upper()}: {e['error']}" for e in errors))
        return faults

    def update(self, data: Mapping[str, Any]) -> list[dict[str, str]]:
        """Apply the known keys of ``data``; return a list of errors (and change nothing) if any is bad."""
        errors: list[dict[str, str]] = []
        new = asdict(self)
        for key, value in data.items():
            if key == "latency_ms":
                if not _is_number(value) or value != int(value) or not 0 <= value <= MAX_LATENCY_MS:
                    errors.append({"field": key, "error": f"must be an integer from 0 to {MAX_LATENCY_MS}"})
                else:
                    new[key] = int(value)
            elif key == "error_rate":
                if not _is_number(value) or not 0.0 <= value <= 1.0:
                    errors.append({"field": key, "error": "must be a number from 0 to 1"})
                else:
                    new[key] = float(value)
            elif key == "unhealthy":
                if not isinstance(value, bool):
                    errors.append({"field": key, "error": "must be true or false"})
                else:
                    new[key] = value
            else:
                errors.append({"field": str(key), "error": "unknown knob (known: latency_ms, error_rate, unhealthy)"})
        if not errors:
            self.latency_ms, self.error_rate, self.unhealthy = new["latency_ms"], new["error_rate"], new["unhealthy"]
        return errors


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Settings:
    redis_url: str
    version: str
    faults: Faults = field(default_factory=Faults)
    queue_max: int = DEFAULT_QUEUE_MAX
    seed: int = DEFAULT_SEED

    @classmethod
    def from_env(cls, redis_url: str, version: str | None, env: Mapping[str, str]) -> Settings:
        return cls(
            redis_url=redis_url,
            version=version or env.get("DEMO_VERSION") or f"demo-{hardening.__version__}",
            faults=Faults.from_env(env),
            queue_max=_env_int(env, "DEMO_QUEUE_MAX", DEFAULT_QUEUE_MAX, minimum=1),
            seed=_env_int(env, "DEMO_FAULT_SEED", DEFAULT_SEED, minimum=0),
        )


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer >= {minimum}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: expected an integer >= {minimum}")
    return value


# ---------------------------------------------------------------------------------------- validation
def validate_payment(data: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Return (clean payment, errors). Extra fields are ignored and not stored."""
    if not isinstance(data, dict):
        return {}, [{"field": "", "error": "body must be a JSON object"}]
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}
    amount = data.get("amount")
    if not _is_number(amount) or amount <= 0:
        errors.append({"field": "amount", "error": "must be a number greater than 0"})
    else:
        clean["amount"] = amount
    currency = data.get("currency")
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        errors.append({"field": "currency", "error": "must be a 3-letter currency code such as EUR"})
    else:
        clean["currency"] = currency.upper()
    customer = data.get("customer_id")
    if not isinstance(customer, str) or not customer.strip() or len(customer) > MAX_CUSTOMER_ID:
        errors.append({"field": "customer_id", "error": f"must be a non-empty string of at most "
                                                        f"{MAX_CUSTOMER_ID} characters"})
    else:
        clean["customer_id"] = customer
    return clean, errors


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def _read_json(request: Request) -> tuple[Any, Response | None]:
    """Parse the body as JSON with a size limit. Returns (data, None) or (None, error response)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None, _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None, _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body, parse_constant=_reject_constant), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, _error(400, f"body is not valid JSON: {exc}")


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> JSONResponse:
    payload: dict[str, Any] = {"error": message}
    if details:
        payload["details"] = details
    return JSONResponse(payload, status_code=status)


# ---------------------------------------------------------------------------------------------- app
Handler = Callable[[Request], Awaitable[Response]]


def _api(handler: Handler) -> Handler:
    """Wrap an /api route: injected latency, injected errors, Redis failures as 503."""

    async def wrapped(request: Request) -> Response:
        state = request.app.state
        faults: Faults = state.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.error_rate > 0 and state.rng.random() < faults.error_rate:
            return _error(500, "injected fault (error_rate)")
        try:
            return await handler(request)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("redis unavailable on %s %s: %s", request.method, request.url.path, exc)
            return _error(503, "redis unavailable")
        except RedisError as exc:
            log.error("redis error on %s %s: %s", request.method, request.url.path, exc)
            return _error(500, "redis error")

    return wrapped


async def health(request: Request) -> Response:
    state = request.app.state
    body: dict[str, Any] = {"status": "ok", "version": state.settings.version, "redis": "ok"}
    try:
        await asyncio.wait_for(state.redis.ping(), HEALTH_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("health: redis does not answer PING: %s", exc)
        body.update(status="unhealthy", redis="unreachable")
    if state.faults.unhealthy:
        body.update(status="unhealthy", reason="fault knob: unhealthy")
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


async def version(request: Request) -> Response:
    return JSONResponse({"version": request.app.state.settings.version})


@_api
async def create_payment(request: Request) -> Response:
    data, problem = await _read_json(request)
    if problem is not None:
        return problem
    payment, errors = validate_payment(data)
    if errors:
        status = 400 if errors[0]["field"] == "" else 422
        return _error(status, "invalid payment", errors)
    state = request.app.state
    now = time.time()
    pid = uuid.uuid4().hex
    record = {
        "id": pid,
        "amount": repr(payment["amount"]),
        "currency": payment["currency"],
        "customer_id": payment["customer_id"],
        "status": "accepted",
        "created_at": datetime.fromtimestamp(now, UTC).isoformat(),
    }
    # The job carries no customer data: queue payloads end up in slowlogs and dumps.
    job = json.dumps({"type": "payment.process", "payment_id": pid, "enqueued_at": now})
    key = PAYMENT_KEY.format(id=pid)
    async with state.redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=record)
        pipe.expire(key, PAYMENT_TTL_S)
        pipe.lpush(QUEUE_KEY, job)
        pipe.ltrim(QUEUE_KEY, 0, state.settings.queue_max - 1)
        pipe.zadd(BY_TIME_KEY, {pid: now})
        pipe.zremrangebyscore(BY_TIME_KEY, "-inf", f"({now - PAYMENT_TTL_S}")
        await pipe.execute()
    return JSONResponse({"id": pid, "status": "accepted"}, status_code=201)


@_api
async def get_payment(request: Request) -> Response:
    pid = request.path_params["payment_id"]
    if not PAYMENT_ID.fullmatch(pid):
        return _error(404, "payment not found")
    stored = await request.app.state.redis.hgetall(PAYMENT_KEY.format(id=pid))
    if not stored:
        return _error(404, "payment not found")
    stored["amount"] = float(stored["amount"])
    return JSONResponse(stored)


@_api
async def queue_stats(request: Request) -> Response:
    state = request.app.state
    async with state.redis.pipeline(transaction=False) as pipe:
        pipe.llen(QUEUE_KEY)
        pipe.zcard(BY_TIME_KEY)
        length, indexed = await pipe.execute()
    return JSONResponse({"queue": QUEUE_KEY, "length": length, "max_length": state.settings.queue_max,
                         "payments_indexed": indexed})


def _from_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    return _is_loopback(host)


async def admin_faults(request: Request) -> Response:
    if not _from_loopback(request):
        return _error(403, "admin endpoints answer only to loopback clients")
    faults: Faults = request.app.state.faults
    if request.method == "POST":
        data, problem = await _read_json(request)
        if problem is not None:
            return problem
        if not isinstance(data, dict):
            return _error(400, "body must be a JSON object such as {\"error_rate\": 0.5}")
        errors = faults.update(data)
        if errors:
            return _error(422, "invalid fault knobs", errors)
        log.warning("fault knobs changed: %s", asdict(faults))
    return JSONResponse(asdict(faults))


def make_redis(url: str) -> aioredis.Redis:
    """A client that fails fast (health checks must not hang) and sends no handshake extras.

    RESP2 and no client-library info: on servers older than 7.2 the HELLO/CLIENT SETINFO handshake
    adds errors to the server's counters, which the Redis observability would report as ours.
    """
    return aioredis.from_url(
        url, decode_responses=True, protocol=2, lib_name=None, lib_version=None,
        socket_connect_timeout=HEALTH_TIMEOUT_S, socket_timeout=HEALTH_TIMEOUT_S,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    )


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.redis = make_redis(settings.redis_url)
        try:
            await asyncio.wait_for(app.state.redis.ping(), HEALTH_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("redis at %s does not answer yet (%s); /health answers 503 until it does",
                        mask_url(settings.redis_url), exc)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            log.warning("demo service stopped (graceful shutdown done)")

    app = Starlette(routes=[
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/api/payments", create_payment, methods=["POST"]),
        Route("/api/payments/{payment_id}", get_payment, methods=["GET"]),
        Route("/api/queue/stats", queue_stats, methods=["GET"]),
        Route("/admin/faults", admin_faults, methods=["GET", "POST"]),
    ], lifespan=lifespan)
    app.state.settings = settings
    app.state.faults = settings.faults
    app.state.rng = random.Random(settings.seed)
    return app


# ---------------------------------------------------------------------------------------------- CLI
def _url_password(url: str) -> list[str]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _MaskingFormatter(logging.Formatter):
    """Masks URL passwords and secret env values (computed once) in every line, tracebacks included."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record), env={}, extra=self.secrets)


def _setup_logging(level: str, redis_url: str | None) -> None:
    # REDIS_URL is masked by its password only, so the log still says which server it talks to.
    others = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    secrets = sorted({*secret_values(others), *_url_password(redis_url or "")}, key=len, reverse=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("uvicorn").setLevel(level.upper())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hardening.demo.service",
        description="Demo payments API backed by Redis (the service under test). Fault knobs: "
                    "DEMO_FAULT_LATENCY_MS, DEMO_FAULT_ERROR_RATE, DEMO_FAULT_UNHEALTHY; "
                    "at runtime: POST /admin/faults.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback only unless --allow-external)")
    p.add_argument("--port", type=int, default=8080, help="port (0 = any free port; default 8080)")
    p.add_argument("--redis-url", default=None, help="Redis URL (default: $REDIS_URL; prefer the env "
                                                     "variable when the URL holds a password)")
    p.add_argument("--version", dest="service_version", default=None,
                   help="version string served by /version and /health (default: $DEMO_VERSION)")
    p.add_argument("--allow-external", action="store_true",
                   help="allow a non-loopback --host (the admin routes still answer only to loopback)")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                   help="uvicorn's log level (default warning)")
    p.add_argument("--access-log", action="store_true", help="log every request (slow under load)")
    return p


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP;
    # with proto 0 every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InfraError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    redis_url = args.redis_url or os.environ.get("REDIS_URL")
    _setup_logging(args.log_level, redis_url)
    try:
        if not _is_loopback(args.host) and not args.allow_external:
            raise ConfigError(f"refusing to listen on {args.host}: the demo service has unauthenticated "
                              "admin routes; use a loopback address (127.0.0.1) or pass --allow-external")
        if not redis_url:
            raise ConfigError("no Redis URL: pass --redis-url or set REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
        validated_urls(redis_url, "--redis-url / REDIS_URL")
        settings = Settings.from_env(redis_url, args.service_version, os.environ)
        sock = _bind(args.host, args.port)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except InfraError as exc:
        log.error("%s", exc)
        return EXIT_INFRA
    return _serve(settings, sock, args)


def _serve(settings: Settings, sock: socket.socket, args: argparse.Namespace) -> int:
    import uvicorn

    host, port = sock.getsockname()[:2]
    log.warning("demo service %s listening on http://%s:%d (redis %s, faults %s)", settings.version,
                f"[{host}]" if ":" in host else host, port, mask_url(settings.redis_url),
                asdict(settings.faults))
    config = uvicorn.Config(
        create_app(settings), log_config=None, log_level=args.log_level, access_log=args.access_log,
        lifespan="on", timeout_graceful_shutdown=3, server_header=False,
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal: SIGTERM ends the process
    # with that signal's status, SIGINT arrives here as KeyboardInterrupt.
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


# --------------------------------------------------------------------------------------- subprocess
def http_json(method: str, url: str, body: Any = None, timeout: float = 2.0) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one request; status 0 if nothing answered. Bytes are sent as-is."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class DemoService:
    """Run the demo service as a subprocess on loopback; use as a context manager.

    ``env`` adds variables (fault knobs such as ``DEMO_FAULT_ERROR_RATE``) to the child's environment.
    The Redis URL reaches the child through ``REDIS_URL`` so a password never shows in ``ps``.
    Startup waits until ``/health`` answers 200; when ``env`` turns the ``unhealthy`` knob on (or
    ``wait_healthy=False``) it waits only until the service answers ``/version``.
    """

    redis_url: str
    port: int | None = None
    env: Mapping[str, str] | None = None
    version: str | None = None
    host: str = "127.0.0.1"
    startup_timeout: float = 20.0
    wait_healthy: bool | None = None
    log_path: Path | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)
    _tmpdir: Path | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> DemoService:
        self.port = self.port or free_port(self.host)
        if self.log_path is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="hardening-demo-"))
            self.log_path = self._tmpdir / "demo-service.log"
        child_env = {**os.environ, **(self.env or {}), "REDIS_URL": self.redis_url, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "hardening.demo.service", "--host", self.host, "--port", str(self.port)]
        if self.version:
            cmd += ["--version", self.version]
        try:
            with STOP_SIGNALS.deferred(), open(self.log_path, "ab") as log_file:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file,
                                             stderr=subprocess.STDOUT, env=child_env, start_new_session=True,
                                             preexec_fn=die_with_parent())
            self._wait_ready(child_env)
        except BaseException:
            self.stop()
            self.cleanup()
            raise
        return self

    def _wait_ready(self, child_env: Mapping[str, str]) -> None:
        healthy = self.wait_healthy
        if healthy is None:
            healthy = child_env.get("DEMO_FAULT_UNHEALTHY", "").strip().lower() not in TRUE_WORDS
        path = "/health" if healthy else "/version"
        deadline = time.monotonic() + self.startup_timeout
        last: tuple[int, Any] = (0, None)
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise InfraError(f"demo service exited with code {self.proc.returncode} before answering "
                                 f"{path}:\n{self.log_tail()}")
            last = http_json("GET", self.url(path), timeout=1.0)
            if last[0] == 200:
                return
            time.sleep(0.1)
        answer = f"last answer {last[0]} {last[1]}" if last[0] else "no answer"
        raise InfraError(f"demo service at {self.base_url} not ready after {self.startup_timeout:.0f}s "
                         f"({path}: {answer}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 1500) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return mask(self.log_path.read_text(errors="replace")[-chars:], extra=_url_password(self.redis_url))

    def faults(self) -> dict[str, Any]:
        status, body = http_json("GET", self.url("/admin/faults"))
        if status != 200:
            raise InfraError(f"GET /admin/faults answered {status}: {body}")
        return body

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change knobs at runtime, e.g. ``set_faults(error_rate=1.0)``; returns the new knobs."""
        status, body = http_json("POST", self.url("/admin/faults"), changes)
        if status != 200:
            raise InfraError(f"POST /admin/faults answered {status}: {body}")
        return body

    def stop(self) -> None:
        stop_process(self.proc)

    def cleanup(self) -> None:
        """Remove the temporary log directory (only one this object created)."""
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.cleanup()


if __name__ == "__main__":
    sys.exit(main())
