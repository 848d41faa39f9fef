"""V2 REST inference straight to its endpoint, ahead of Starlette's routing.

Starlette's middleware stack and route table cost ~13-17 us per request in process (a
regex per route until one matches, two middleware layers, its exception wrapping), about a
tenth of a batch-1 REST call's server CPU. The one path that carries inference traffic,
``POST /v2/models/{model}[/versions/{version}]/infer``, is matched here by splitting the
path and handed to the same wrapped endpoint the route table holds (auth, error table,
metrics and request id included), so its behaviour is the route's; everything else, wrong
methods and unknown paths included, goes through Starlette as before.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.http.handlers import Endpoint

INFER_ROUTE = "/v2/models/{model}/infer"


def infer_path_params(path: str) -> dict[str, str] | None:
    """``{"model": m}`` or ``{"model": m, "version": v}`` for an infer path, else None
    (the same paths Starlette's ``{param}`` segments match: no empty segment)."""
    parts = path.split("/")
    if len(parts) == 5 and parts[:3] == ["", "v2", "models"] and parts[4] == "infer":
        return {"model": parts[3]} if parts[3] else None
    if (
        len(parts) == 7
        and parts[:3] == ["", "v2", "models"]
        and parts[4] == "versions"
        and parts[6] == "infer"
        and parts[3]
        and parts[5]
    ):
        return {"model": parts[3], "version": parts[5]}
    return None


class InferFastPath:
    """ASGI app: V2 infer POSTs to ``endpoint``, every other request to ``app``."""

    def __init__(self, app: ASGIApp, endpoint: Endpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            params = infer_path_params(scope["path"])
            if params is not None:
                scope["path_params"] = params
                response = await self.endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
