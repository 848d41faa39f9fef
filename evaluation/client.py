"""A small HTTP client for the server's typed REST API (stdlib only, keep-alive per thread)."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any


class ApiError(RuntimeError):
    """The server could not be reached or answered something that is not JSON."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: the status and the decoded JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def error(self) -> str:
        """The server's ``error`` message ("" on success)."""
        return "" if self.status == 200 else str(self.body.get("error", self.body))


class HttpApi:
    """POSTs images to ``/v1/classify`` and ``/v1/read``; one connection per calling thread."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ApiError(f"--url must look like http://HOST:PORT, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> Answer:
        """One request; a dropped keep-alive connection is retried once on a new one."""
        headers = {"content-type": content_type} if content_type else {}
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise ApiError(f"{method} {self.base_url}{path}: {exc}") from None
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            raise ApiError(
                f"{method} {path}: HTTP {response.status}, not JSON: {raw[:200]!r}"
            ) from None
        return Answer(response.status, decoded if isinstance(decoded, dict) else {"body": decoded})

    def models(self) -> dict[str, Any]:
        """``GET /v1/models``: the default model and every model's labels and version."""
        answer = self.request("GET", "/v1/models")
        if answer.status != 200:
            raise ApiError(f"GET /v1/models: HTTP {answer.status}: {answer.error}")
        return answer.body

    def classify(self, jpeg: bytes, model: str, debug: bool = False) -> Answer:
        """``POST /v1/classify`` with the JPEG as the raw body (``?debug=1`` for ``prepared``)."""
        return self._post_image("/v1/classify", jpeg, model, debug)

    def read(self, jpeg: bytes, model: str, debug: bool = False) -> Answer:
        """``POST /v1/read`` with the JPEG as the raw body (``?debug=1`` for ``prepared``)."""
        return self._post_image("/v1/read", jpeg, model, debug)

    def _post_image(self, endpoint: str, jpeg: bytes, model: str, debug: bool) -> Answer:
        query = {"model": model}
        if debug:
            query["debug"] = "1"
        return self.request(
            "POST", f"{endpoint}?{urllib.parse.urlencode(query)}", jpeg, "image/jpeg"
        )
