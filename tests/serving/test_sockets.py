"""Port sharing for worker processes: reserve once, listen many times, refuse a held port."""

import socket

import pytest

from serving.sockets import listen_shared, port_of, reserve


def test_reserved_port_zero_is_shared_by_listeners_and_closed_to_others():
    held = reserve("127.0.0.1", 0)
    port = port_of(held)
    assert port > 0
    first, second = listen_shared("127.0.0.1", port), listen_shared("127.0.0.1", port)
    try:
        with socket.socket() as stranger, pytest.raises(OSError):
            stranger.bind(("127.0.0.1", port))
        with pytest.raises(OSError, match="cannot bind"):
            reserve("127.0.0.1", port)
        # Connections reach the listeners (the reserved socket itself never listens).
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        for sock in (first, second, held):
            sock.close()


def test_a_port_another_server_holds_is_refused():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError, match=r"cannot bind 127\.0\.0\.1"):
            reserve("127.0.0.1", port_of(other))


def test_wildcard_host_covers_ipv4_and_ipv6():
    held = reserve("0.0.0.0", 0)
    try:
        listener = listen_shared("0.0.0.0", port_of(held))
        with listener, socket.create_connection(("127.0.0.1", port_of(held)), timeout=5):
            pass
    finally:
        held.close()
