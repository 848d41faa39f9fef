"""The REST form of shadow / promote / rollback calls: ``{"version": "3"}`` in, the policy out."""

from __future__ import annotations

from typing import Any

import orjson

from serving.errors import InvalidInput
from serving.repository.policy import ServingPolicy


def version_from_body(body: bytes) -> str:
    """The ``version`` of a JSON body ("" when the body is empty or names none)."""
    if not body.strip():
        return ""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f'expected a JSON object like {{"version": "3"}}: {exc}') from None
    if not isinstance(data, dict):
        raise InvalidInput('expected a JSON object like {"version": "3"}')
    version = data.get("version", "")
    # Only the JSON type is checked here; whether it is a version number is a rollout rule
    # (serving/shadow/rollout.py), the same for gRPC.
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise InvalidInput(f'"version" must be a version number, got {version!r}')
    return str(version)


def policy_json(model: str, policy: ServingPolicy) -> dict[str, Any]:
    """What a policy call answers: the model's serving.json as now applied."""
    return {"model": model, **policy.to_json()}
