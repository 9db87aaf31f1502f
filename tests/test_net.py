"""Loopback ports: a port from ``free_port`` is handed to no other process's ``bind(0)`` while it waits for its
server, and a server (``SO_REUSEADDR``, as redis-server, k6 and the demo service set) listens on it at once."""

from __future__ import annotations

import socket

import pytest

from hardening.net import free_port


def test_a_free_port_is_not_handed_out_again():
    reserved = {free_port() for _ in range(50)}
    assert len(reserved) == 50
    handed = set()
    for _ in range(5000):  # what any other process asking the kernel for a port would get
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            handed.add(s.getsockname()[1])
    # a probe that only binds port 0 and closes gives ~19 of these 5,000 binds one of the 50 ports
    assert not reserved & handed


def test_a_server_listens_on_it_and_a_client_is_refused_until_then():
    port = free_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
