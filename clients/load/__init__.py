"""Closed-loop load generator: C requests in flight, every response verified.

Used by ``digits-client load``, the benchmark (``bench``), the local cluster's failover
demo and the reliability tests. The modules, by job:

* :mod:`~clients.load.config` -- what to send, how hard, how long (:class:`LoadConfig`);
* :mod:`~clients.load.workload` -- the images and the serialised request payloads;
* :mod:`~clients.load.checks` -- verification of every answer;
* :mod:`~clients.load.transport` -- the interface for "how one request is sent";
* :mod:`~clients.load.grpc_transport` -- typed, V2 and streaming gRPC;
* :mod:`~clients.load.http_payloads` -- the HTTP APIs' requests (V2 REST JSON/binary, PNG);
* :mod:`~clients.load.http_transport` -- V2 REST and the typed /v1/classify over aiohttp;
* :mod:`~clients.load.http_ready` -- ``--wait`` for the HTTP APIs (V2 REST readiness);
* :mod:`~clients.load.runner` -- the closed loop (:func:`run_load`);
* :mod:`~clients.load.stats` -- what a run measured (:class:`LoadResult`);
* :mod:`~clients.load.background` -- a run on a thread (:class:`BackgroundLoad`).
"""

from clients.load.background import BackgroundLoad
from clients.load.checks import BadResponse, Expect, check_typed, check_v2
from clients.load.config import APIS, GRPC_APIS, HTTP_APIS, LoadConfig
from clients.load.runner import (
    INVALID,
    OK,
    Outcome,
    Progress,
    ProgressFn,
    run_load,
    run_load_sync,
)
from clients.load.stats import LoadResult
from clients.load.transport import RequestFailed, Transport
from clients.load.workload import synthetic_digits, typed_payload, v2_payload

__all__ = [
    "APIS",
    "GRPC_APIS",
    "HTTP_APIS",
    "INVALID",
    "OK",
    "BackgroundLoad",
    "BadResponse",
    "Expect",
    "LoadConfig",
    "LoadResult",
    "Outcome",
    "Progress",
    "ProgressFn",
    "RequestFailed",
    "Transport",
    "check_typed",
    "check_v2",
    "run_load",
    "run_load_sync",
    "synthetic_digits",
    "typed_payload",
    "v2_payload",
]
