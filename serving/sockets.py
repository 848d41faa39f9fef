"""Listening ports shared by worker processes through SO_REUSEPORT.

The supervisor :func:`reserve` s every port first: it binds (port 0 picks a free one) and keeps
the socket without listening, so the port stays ours for the whole run and the kernel sends
connections only to the workers' listening sockets. Each worker then binds the real port with
SO_REUSEPORT too (gRPC through its ``grpc.so_reuseport`` option, other transports through
:func:`listen_shared`), and the kernel spreads new connections over the workers.

A port another server already holds is refused: :func:`reserve` binds *before* it sets
SO_REUSEPORT, so it cannot silently join someone else's reuse group.
"""

from __future__ import annotations

import errno
import socket

_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def _family_and_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    """The family and bind address for ``host``; a wildcard means IPv4 + IPv6, as gRPC does."""
    if host in _WILDCARDS:
        if socket.has_ipv6:
            return socket.AF_INET6, ("::", port)
        return socket.AF_INET, ("0.0.0.0", port)
    infos = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, _type, _proto, _name, address = infos[0]
    return family, address


def _socket(host: str, port: int) -> tuple[socket.socket, tuple]:
    family, address = _family_and_address(host, port)
    try:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only for
        # such sockets, and without it Nagle holds a response body that follows its head
        # until the client's delayed ACK (~40 ms per keep-alive request).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        if family == socket.AF_INET6 and address[0] == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    except OSError:
        if host not in _WILDCARDS or family != socket.AF_INET6:
            raise
        # IPv6 compiled in but switched off on this host: plain IPv4 wildcard.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        address = ("0.0.0.0", port)
    return sock, address


def reserve(host: str, port: int, what: str = "", flag: str = "") -> socket.socket:
    """Hold ``host:port`` for workers to share; port 0 picks a free port (read it back with
    ``sock.getsockname()[1]``). Raises OSError when another server holds the port."""
    sock, address = _socket(host, port)
    try:
        sock.bind(address)  # without SO_REUSEPORT: fails on a port someone else holds
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError as exc:
        sock.close()
        raise bind_error(what, host, port, exc, flag) from None
    return sock


def listen_shared(host: str, port: int, backlog: int = 2048, share: bool = True) -> socket.socket:
    """A listening socket for transports that accept a pre-bound socket (e.g. uvicorn's
    ``startup(sockets=[sock])``): on a port reserved by the supervisor (SO_REUSEPORT), or
    with ``share=False`` one this process alone holds (port 0 = a free one)."""
    sock, address = _socket(host, port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise bind_error("HTTP", host, port, exc, "--http-port") from None
    sock.setblocking(False)
    return sock


def port_of(sock: socket.socket) -> int:
    """The port a socket is bound to."""
    return sock.getsockname()[1]


def bind_error(what: str, host: str, port: int, exc: OSError, flag: str = "") -> OSError:
    """One line a user can act on for a listener (``what``: gRPC, HTTP...) that could not
    bind; ``flag`` is the option that moves it."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        other = f"another with {flag}" if flag else "another port"
        reason += f" (another server listens there: stop it, or choose {other})"
    listener = f"{what} port " if what else ""
    return OSError(exc.errno, f"cannot bind {listener}{host}:{port}: {reason}")


def check_free(what: str, host: str, port: int, flag: str = "") -> None:
    """Raise :func:`bind_error` when another socket listens on ``host:port``.

    For listeners whose library reports a busy port only through its own log lines (gRPC's C
    core). Binds with SO_REUSEADDR, as the servers do, so a port that only has connections in
    TIME-WAIT left counts as free. Port 0 is always free.
    """
    if port == 0:
        return
    sock, address = _socket(host, port)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise bind_error(what, host, port, exc, flag) from None
