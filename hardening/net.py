"""Loopback ports: pick a free one, wait until something listens on one."""

from __future__ import annotations

import socket
import subprocess
import time

from hardening.errors import InfraError


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on, and that no other process is handed for about a minute.

    Binding port 0 and closing would leave the port free for anyone: two processes picking ports at once
    (parallel test workers, two load tests on one CI host) could both get it, and the second server would
    fail to listen. Here the probe also accepts one connection of its own and closes its end first, so the
    port stays in TIME_WAIT: the kernel gives it to no other ``bind(0)``, while a server that sets
    ``SO_REUSEADDR`` (redis-server, k6's REST API, the demo service, Python's HTTPServer) listens on it at
    once. A connection to it is refused until then. (Yelp's ephemeral-port-reserve works the same way.)
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.create_connection((host, port), timeout=5):
            accepted, _ = listener.accept()
            accepted.close()  # this end first: (host, port) is the side left in TIME_WAIT
    return port


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise InfraError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise InfraError(f"nothing listening on {host}:{port} after {timeout:.0f}s")
