"""Every gRPC method the server answers, in one table the server looks calls up in.

The generated ``add_*Servicer_to_server`` functions hand a server each service twice: as a
generic handler and as "registered methods". grpc.aio (1.85) serves each registered method
from its own pending task and waits on all of them with ``asyncio.wait`` for every call it
accepts: with our ~20 methods that is ~160 Python calls per RPC, about as many as the rest of
the library's per-call work (docs/performance.md). So the generated functions are given this
table instead of the server: it keeps each method's handler (wrapped by
serving/grpc/calls.py where asked), and the server gets one generic handler, one dict
lookup per call and a single pending task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import grpc

Wrap = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]


class MethodTable(grpc.GenericRpcHandler):
    """``/package.Service/Method`` -> handler; stands in for the server at registration."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add(
        self, register: Callable[..., None], servicer: object, wrap: Wrap | None = None
    ) -> None:
        """``register(servicer, self)``: a generated ``add_*Servicer_to_server`` function;
        ``wrap`` is applied to each of that service's handlers."""
        before = set(self._handlers)
        register(servicer, self)
        added = [path for path in self._handlers if path not in before]
        if not added:
            # A grpcio-tools release that stops calling add_registered_method_handlers
            # would otherwise leave the service silently unanswered.
            raise RuntimeError(f"{register.__name__} registered no methods")
        if wrap is not None:
            for path in added:
                self._handlers[path] = wrap(path, self._handlers[path])

    def add_generic_rpc_handlers(self, _handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        """Ignored: the same methods arrive through :meth:`add_registered_method_handlers`."""

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        """Keep one service's handlers (called by the generated code)."""
        for name, handler in handlers.items():
            self._handlers[f"/{service}/{name}"] = handler

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """The handler of a call's method, None for a method nobody serves (UNIMPLEMENTED)."""
        return self._handlers.get(details.method)
