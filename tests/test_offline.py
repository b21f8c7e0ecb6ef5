"""The offline guarantee: the guard that the whole suite runs under really blocks the network."""

import socket

import pytest

from rag.core.offline import NetworkBlockedError, NetworkGuard


def test_outbound_connections_are_blocked_and_named():
    with NetworkGuard() as guard:
        with pytest.raises(NetworkBlockedError, match="blocked connection"):
            socket.create_connection(("192.0.2.1", 443), timeout=1)
    assert guard.attempts and "192.0.2.1" in guard.attempts[0]
    guard.attempts.clear()


def test_loopback_is_allowed():
    with NetworkGuard() as guard, socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
    assert guard.attempts == []
