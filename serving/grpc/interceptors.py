"""The one server interceptor, installed only when a bearer token is configured.

It refuses an unauthenticated call before its request bytes are parsed, which only an
interceptor can do (a wrapped handler receives the request already decoded). Everything
else that happens per RPC is in serving/grpc/calls.py, wrapped around the handlers at
registration, so a server without a token pays for no interceptor at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from serving.auth import DENIED, TokenCheck
from serving.grpc.calls import REQUEST_ID_KEY, RequestIds

# Health and reflection stay open: load balancers and grpcurl must reach them without
# credentials.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Answers UNAUTHENTICATED (with the call's request id) unless the token checks out."""

    def __init__(self, token: str, ids: RequestIds) -> None:
        self._auth = TokenCheck(token)
        self._ids = ids
        self._deny_handler = grpc.unary_unary_rpc_method_handler(self._deny)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if self.allows(details.method, details.invocation_metadata):
            return await continuation(details)
        return self._deny_handler

    def allows(self, method_path: str, metadata: Any) -> bool:
        """Whether a call of ``/package.Service/Method`` with ``metadata`` may proceed (the
        native front end asks too: one rule for both)."""
        if method_path.startswith(OPEN_SERVICES):
            return True
        header = next(
            (v for k, v in metadata or () if k == "authorization" and isinstance(v, str)), None
        )
        return self._auth.allows(method_path.rsplit("/", 1)[-1], header)

    async def _deny(self, _request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            DENIED,
            trailing_metadata=((REQUEST_ID_KEY, self._ids.of(context)),),
        )
