"""``digits-feedback promote`` / ``rollback``: thin clients of the repository API over HTTP,
or of ``DigitClassifier.ChangeServing`` over gRPC."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import grpc

from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from serving.settings import env_name

# The server's own token variable (--auth-token).
TOKEN_ENV = env_name("auth_token")


class Refused(Exception):
    """The server refused the change or could not be reached; the message says why."""


def change_policy(
    server: str,
    model: str,
    action: str,
    version: str = "",
    token: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """POST ``/v2/repository/models/{model}/{action}``; the policy the server now applies."""
    url = f"{server.rstrip('/')}/v2/repository/models/{model}/{action}"
    body = json.dumps({"version": version} if version else {}).encode()
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise Refused(f"{action} refused ({exc.code}): {_error_text(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Refused(f"cannot reach {server}: {reason}") from None


def change_policy_grpc(
    address: str,
    model: str,
    action: str,
    version: str = "",
    token: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """``ChangeServing`` at ``address`` (HOST:PORT, plaintext); the policy as
    :func:`change_policy` answers it (None where the server says "")."""
    request = pb.ChangeServingRequest(
        model=model,
        action=pb.ServingAction.Value(f"SERVING_ACTION_{action.upper()}"),
        version=version,
    )
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    try:
        with grpc.insecure_channel(address) as channel:
            stub = digits_pb2_grpc.DigitClassifierStub(channel)
            reply = stub.ChangeServing(request, timeout=timeout, metadata=metadata)
    except grpc.RpcError as exc:
        code = exc.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise Refused(f"cannot reach {address}: {exc.details()}") from None
        raise Refused(f"{action} refused ({code.name}): {exc.details()}") from None
    return {
        "model": reply.model,
        **{k: getattr(reply, k) or None for k in ("served", "shadow", "previous")},
    }


def _error_text(exc: urllib.error.HTTPError) -> str:
    raw = exc.read()
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip() or exc.reason


def describe(policy: dict[str, Any]) -> str:
    """One line for people: what answers now, what shadows, what a rollback returns to."""
    parts = [f"{policy.get('model', '?')}: served version {policy.get('served') or 'newest'}"]
    if policy.get("shadow"):
        parts.append(f"shadow {policy['shadow']}")
    if policy.get("previous"):
        parts.append(f"rollback to {policy['previous']}")
    return ", ".join(parts)
