"""TLS and mTLS on the HTTP transport: the same options as gRPC, checked with real handshakes."""

from __future__ import annotations

import http.client
import ssl

import pytest


def _get(port: int, context: ssl.SSLContext | None, path: str = "/v2/models/cnn") -> int:
    if context is None:
        conn = http.client.HTTPConnection("localhost", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_https_serves_trusting_clients_and_refuses_plaintext(make_server, pki):
    server = make_server(tls_cert=pki.server_cert, tls_key=pki.server_key)
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    assert _get(server.app.http_port, trusting) == 200
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        _get(server.app.http_port, None)


def test_https_mtls_requires_a_client_certificate(make_server, pki):
    server = make_server(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca)
    anonymous = ssl.create_default_context(cafile=str(pki.ca))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        _get(server.app.http_port, anonymous)
    with_cert = ssl.create_default_context(cafile=str(pki.ca))
    with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    assert _get(server.app.http_port, with_cert) == 200
