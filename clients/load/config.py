"""What a load run sends, how hard, and for how long."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from clients.connection import Endpoint

# The request kinds the load generator can send (one transport module each serves some):
# gRPC typed / V2 / typed streaming; HTTP: V2 REST with JSON or binary tensors, and the
# typed /v1/classify with PNG files.
GRPC_APIS = ("typed", "v2", "stream")
HTTP_APIS = ("rest-json", "rest-binary", "http-png")
APIS = GRPC_APIS + HTTP_APIS


@dataclass(frozen=True)
class LoadConfig:
    """What to send, how hard, and for how long."""

    endpoint: Endpoint
    model: str
    version: str = ""
    api: str = "typed"
    concurrency: int = 1
    batch: int = 1
    duration: float = 10.0
    warmup: float = 1.0
    # Requests measured after warm-up; 0 = no limit (duration only).
    max_requests: int = 0
    # Bidi streams for api="stream"; 0 = one per 32 requests in flight, at most 4.
    streams: int = 0
    # Per-request deadline (unary APIs).
    timeout: float = 30.0
    # uint8 [N,28,28] images to send; None = synthetic digits.
    images: np.ndarray | None = None
    # Base URL of the server's HTTP transport (the HTTP APIs), e.g. http://127.0.0.1:8000;
    # "" = the endpoint's address over http (https with a TLS CA).
    http_url: str = ""

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise ValueError(f"api must be one of {APIS}, got {self.api!r}")
        if self.concurrency < 1 or self.batch < 1:
            raise ValueError("concurrency and batch must be >= 1")
        if self.duration <= 0 or self.warmup < 0 or self.max_requests < 0:
            raise ValueError("duration must be > 0, warmup and max_requests >= 0")

    def base_url(self) -> str:
        """Where the HTTP APIs send: ``http_url``, else the endpoint's address."""
        if self.http_url:
            return self.http_url.rstrip("/")
        scheme = "https" if self.endpoint.tls_ca is not None else "http"
        return f"{scheme}://{self.endpoint.address}"

    def stream_count(self) -> int:
        """How many bidi streams the ``stream`` API spreads the in-flight requests over."""
        if self.streams > 0:
            return min(self.streams, self.concurrency)
        return max(1, min(4, math.ceil(self.concurrency / 32)))
