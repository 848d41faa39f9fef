"""The client retry policy used through nginx: resend UNAVAILABLE, nothing else.

UNAVAILABLE is what a client sees when nginx answers for a replica that died with the
request in flight, or when a replica drains on SIGTERM; another attempt lands on a live
replica. Other codes (INVALID_ARGUMENT, RESOURCE_EXHAUSTED...) are not retried: repeating
them would not help or would add load to an overloaded server.
"""

from __future__ import annotations

import json

import grpc

from clients.connection import ChannelOption

# The services whose RPCs the client may retry. Classification has no side effects, so
# sending it again after UNAVAILABLE is safe.
RETRIED_SERVICES = ("digits.v1.DigitClassifier", "inference.GRPCInferenceService")


def retry_service_config(max_attempts: int = 4, timeout_s: float = 10.0) -> str:
    """gRPC service config: retry UNAVAILABLE with backoff, and a per-attempt-chain deadline."""
    config = {
        "methodConfig": [
            {
                "name": [{"service": s} for s in RETRIED_SERVICES],
                "timeout": f"{timeout_s}s",
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    return json.dumps(config)


def retry_options(max_attempts: int = 4) -> tuple[ChannelOption, ...]:
    """Channel options that switch the policy above on (for ``Endpoint(options=...)``)."""
    return (
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry_service_config(max_attempts)),
    )


def retrying_channel(address: str, max_attempts: int = 4) -> grpc.Channel:
    """A plaintext blocking channel to ``address`` with the retry policy switched on."""
    return grpc.insecure_channel(address, options=list(retry_options(max_attempts)))
