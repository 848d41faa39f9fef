#!/usr/bin/env python3
"""Container health check: ask the server's grpc.health.v1 service; exit 0 only on SERVING.

Docker's HEALTHCHECK runs this inside the server container. It deliberately depends only on
``grpcio`` and ``grpcio-health-checking`` (runtime dependencies of the server) and not on the
project's packages, so it keeps working when it is copied next to any image of the server.

The gRPC health service (not a TCP connect) is the check because the server opens its port
*before* the model repository is loaded and reports NOT_SERVING until a model is ready, and
again while it drains on SIGTERM; a port check would call a loading or draining server
healthy.

Exit codes: 0 SERVING, 1 anything else (NOT_SERVING, unknown service, unreachable, timeout).
Plaintext only: with --tls-cert the server would need a client configured for its certificate
name, which a generic probe cannot know (Kubernetes' own gRPC probes have the same limit).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def default_address() -> str:
    """127.0.0.1 and the port the server itself reads from DIGITS_GRPC_PORT (default 8001)."""
    return f"127.0.0.1:{os.environ.get('DIGITS_GRPC_PORT') or '8001'}"


def check(address: str, service: str = "", timeout: float = 3.0) -> str:
    """The health status name for ``service`` at ``address``; raises grpc.RpcError on failure."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one check and return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=default_address(), help="host:port of the server")
    parser.add_argument(
        "--service",
        default="",
        help='"" = the whole server; a model name (e.g. cnn) = that model is ready',
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds before giving up")
    args = parser.parse_args(argv)
    try:
        status = check(args.address, args.service, args.timeout)
    except grpc.RpcError as exc:
        print(f"unhealthy: {args.address} {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(f"{args.address} service={args.service!r} {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
