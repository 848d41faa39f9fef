"""Port sharing for worker processes: reserve once, listen many times, refuse a held port."""

import socket

import pytest

from serving.sockets import check_free, listen_shared, port_of, reserve


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


def test_accepted_connections_get_tcp_nodelay():
    # Without it Nagle delays a response body that follows its head by a delayed ACK
    # (~40 ms on every keep-alive HTTP request after the first).
    import asyncio
    import socket as socket_mod

    from serving.sockets import listen_shared

    async def scenario() -> int:
        sock = listen_shared("127.0.0.1", 0, share=False)
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        class Grab(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                raw = transport.get_extra_info("socket")
                accepted.set_result(raw.getsockopt(socket_mod.IPPROTO_TCP, socket_mod.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(Grab, sock=sock)
        _reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        value = await asyncio.wait_for(accepted, 5)
        writer.close()
        server.close()
        return value

    assert asyncio.run(scenario()) == 1


def test_check_free_refuses_a_listening_port_with_the_flag_to_change():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = port_of(other)
        with pytest.raises(
            OSError, match=rf"cannot bind gRPC port 127\.0\.0\.1:{port}: .*--grpc-port"
        ):
            check_free("gRPC", "127.0.0.1", port, "--grpc-port")
    check_free("gRPC", "127.0.0.1", 0)  # port 0 is always free


def test_a_port_with_only_time_wait_connections_left_is_free():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = port_of(listener)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = listener.accept()
    accepted.close()  # the side that closes first keeps the connection in TIME-WAIT
    client.recv(1)
    client.close()
    listener.close()
    # A bind without SO_REUSEADDR (the demo's old check) is refused for up to a minute...
    with socket.socket() as naive, pytest.raises(OSError):
        naive.bind(("127.0.0.1", port))
    # ...while the server, which binds with SO_REUSEADDR, can use the port: so can the check.
    check_free("HTTP", "127.0.0.1", port)
