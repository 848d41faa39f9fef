"""``--wait`` for the HTTP APIs: poll the server's V2 REST readiness (standard library only,
so a server-side install without the clients' extras can still use it)."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from clients.connection import ClientError
from clients.load.config import LoadConfig


def wait_until_http_ready(config: LoadConfig, wait_seconds: float) -> None:
    """Block until ``GET /v2/health/ready`` and the model's ready endpoint answer 200.

    The HTTP counterpart of :func:`clients.connection.wait_until_serving` for ``--wait``: a
    model the server does not know (404) is not waited for, the first request then says so.
    Raises ClientError after ``wait_seconds``.
    """
    base = config.base_url()
    model = urllib.parse.quote(config.model, safe="")
    urls = [f"{base}/v2/health/ready", f"{base}/v2/models/{model}/ready"]
    headers = {"Authorization": f"Bearer {config.endpoint.token}"} if config.endpoint.token else {}
    context = None
    if config.endpoint.tls_ca is not None:
        context = ssl.create_default_context(cafile=str(config.endpoint.tls_ca))
    deadline = time.monotonic() + max(0.0, wait_seconds)
    last = "no answer"
    while True:
        try:
            for url in urls:
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=2, context=context):
                    pass
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and exc.url == urls[1]:
                return
            last = f"{exc.url} answered HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = f"cannot reach {base} ({exc})"
        if time.monotonic() >= deadline:
            raise ClientError(f"not ready after {wait_seconds:g}s: {last}")
        time.sleep(0.1)
