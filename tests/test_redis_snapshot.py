"""Snapshots against real servers: each probe fails alone, and the tool adds no errors of its own."""

from __future__ import annotations

import time

import pytest
import redis
from conftest import wait_for
from redis_support import SERVERS, EmbeddedRedis, binary_or_skip, errors_of

from hardening.redisobs import Collector, compare
from hardening.redisobs.sampler import Sampler


@pytest.mark.parametrize("server", SERVERS)
def test_snapshot_reads_every_probe(server, shared_server):
    s = shared_server(server)
    app = redis.Redis.from_url(s.url, protocol=2, driver_info=None)
    app.config_set("latency-monitor-threshold", 1)                     # the next test's reset sets it back
    app.eval("local i=0 while i<400000 do i=i+1 end return i", 0)   # a latency event
    collector = Collector(s.url)
    snap = collector.snapshot()
    collector.close()
    node = snap["nodes"][0]
    expected_kind = "valkey" if server == "valkey-9" else "redis"
    assert snap["server"]["kind"] == expected_kind
    assert snap["server"]["version"].startswith({"redis-7.0": "7.0", "valkey-9": "9.", "redis-6.2": "6.2"}[server])
    assert len(snap["server"]["run_id"]) == 40
    assert node["info"]["commandstats"]["eval"]["calls"] == 1
    assert node["config"]["latency-monitor-threshold"] == 1
    assert node["latency"]["latest"][0]["event"] == "command"
    assert node["latency"]["history"]["command"][0][1] >= 1
    assert node["clients"]["total"] == 1 and node["clients"]["tool_connections_excluded"] == 1
    assert node["memory_stats"]["peak.allocated"] > 0
    assert abs(node["t"] - time.time()) < 5 and node["mono"] > 0
    if server == "redis-6.2":
        assert set(node["unavailable"]) == {"latency_histogram"}
        assert "7.0" in node["unavailable"]["latency_histogram"]
    else:
        assert node["unavailable"] == {}
        assert node["histogram"]["eval"]["calls"] == 1


@pytest.mark.parametrize("server", SERVERS)
def test_tool_adds_no_errors(server, tmp_path, shared_server):
    """Snapshots and sampling leave errorstats / total_error_replies untouched (6.2 is the trap)."""
    s = shared_server(server)
    collector = Collector(s.url)
    for _ in range(3):
        collector.snapshot()
    sampler = Sampler([s.url], tmp_path / "t.jsonl", interval=0.05).start()
    wait_for(lambda: sampler.samples >= 3, 5, "three samples")
    sampler.stop()
    collector.close()
    total, stats = errors_of(s.url)
    assert (total, stats) == (0, "{}")
    assert sampler.samples >= 3
    if server == "redis-6.2":
        # the control: redis-py's default handshake does count errors on 6.2
        default = redis.Redis.from_url(s.url)
        default.ping()
        default.close()
        assert errors_of(s.url)[0] >= 1


@pytest.mark.parametrize("server", ["redis-7.0", "redis-6.2"])
def test_config_renamed_away(server):
    with EmbeddedRedis(binary=binary_or_skip(server), extra_args=["--rename-command", "CONFIG", ""]) as s:
        app = redis.Redis.from_url(s.url, protocol=2, driver_info=None)
        collector = Collector(s.url)
        before = collector.snapshot()
        for i in range(50):
            app.set(f"k{i}", i)
        after = collector.snapshot()
        collector.close()
        total, _ = errors_of(s.url)
    node = after["nodes"][0]
    assert "error" not in after
    assert "renamed or disabled" in node["unavailable"]["config"]
    assert "config" not in node
    assert node["slowlog"]["len"] >= 0 and node["clients"]["total"] == 1
    assert total == 0, "probing a renamed CONFIG must not send it"
    comparison = compare(before, after)
    assert comparison["aggregate"]["cmd"]["set"]["calls"] == 50
    assert comparison["aggregate"]["config"] == {}


def test_unreachable_server_is_recorded_not_raised():
    from hardening.net import free_port

    collector = Collector(f"redis://:hunter2pass@127.0.0.1:{free_port()}/0", timeout=0.5)
    snap = collector.snapshot()
    collector.close()
    assert "no Redis node reachable" in snap["error"]
    assert "hunter2pass" not in str(snap)


def _self_signed(tmp_path):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return tmp_path / "cert.pem", tmp_path / "key.pem"


def test_rediss_with_password(tmp_path):
    from hardening.net import free_port

    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    args = ["--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--requirepass", "tls-pw-98765"]
    with EmbeddedRedis(binary=binary_or_skip("redis-7.0"), extra_args=args):
        url = f"rediss://:tls-pw-98765@127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}"
        collector = Collector(url)
        before = collector.snapshot()
        app = redis.Redis.from_url(url, protocol=2, driver_info=None)
        for i in range(40):
            app.set(f"k{i}", i)
        after = collector.snapshot()
        collector.close()
    assert "error" not in after and after["url"].startswith("rediss://:***@127.0.0.1")
    assert compare(before, after)["aggregate"]["cmd"]["set"]["calls"] == 40
    assert "tls-pw-98765" not in str(before) + str(after)
