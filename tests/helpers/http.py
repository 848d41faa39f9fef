"""Plain HTTP requests for tests (urllib: no client library between the test and the wire)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One real HTTP request; returns (status, lower-cased headers, body) for any status."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read()


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def error_of(body: bytes) -> str:
    """The message of a KServe-style ``{"error": ...}`` body (fails the test otherwise)."""
    data = json.loads(body)
    assert set(data) == {"error"}, data
    return data["error"]
