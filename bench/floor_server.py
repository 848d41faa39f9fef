"""The transport floor: a KServe V2 gRPC server that runs no model and no code of ours.

Every ``ModelInfer`` gets one fixed answer (ten zero probabilities, 1x10 FP32), built once.
The method is served from a generic handler only, as the digits server serves its methods
(serving/grpc/methods.py): grpc.aio's registered methods cost a task per method on every call.
What such a server costs per call is what the gRPC library, the event loop and the kernel
cost; no server on the same library can be cheaper. Three engines, to see which floor is
lowest on this machine:

- ``aio``: ``grpc.aio.server`` on asyncio's own event loop,
- ``uvloop``: the same on uvloop (the digits server's default, serving/event_loop.py),
- ``sync``: ``grpc.server`` with a thread pool (what the naive server uses).

    python bench/floor_server.py --engine aio [--port 0]

Prints ``floor-server ready grpc=N http=-1 metrics=-1 pid=P`` once listening; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np

from clients.server_process import ReadyLine
from serving import event_loop
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc as pb_grpc

ENGINES = ("aio", "uvloop", "sync")


def fixed_answer() -> pb.ModelInferResponse:
    """The one answer: what the null model would return, without computing it."""
    answer = pb.ModelInferResponse(
        model_name="null",
        model_version="1",
        raw_output_contents=[np.zeros((1, 10), dtype="<f4").tobytes()],
    )
    answer.outputs.add(name="probabilities", datatype="FP32", shape=[1, 10])
    return answer


class _SyncFloor(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self) -> None:
        self._answer = fixed_answer()

    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        return self._answer


class _AioFloor(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self) -> None:
        self._answer = fixed_answer()

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        return self._answer


def _register(servicer: _SyncFloor | _AioFloor, server: grpc.Server | grpc.aio.Server) -> None:
    infer = grpc.unary_unary_rpc_method_handler(
        servicer.ModelInfer,
        request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=pb.ModelInferResponse.SerializeToString,
    )
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {"ModelInfer": infer}),)
    )


def _ready(port: int) -> None:
    print(ReadyLine("floor-server", port, None, None, os.getpid()).format(), flush=True)


def serve_sync(host: str, port: int, threads: int) -> None:
    """The synchronous server until SIGTERM/SIGINT."""
    server = grpc.server(ThreadPoolExecutor(max_workers=threads))
    _register(_SyncFloor(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.stop(1))
    _ready(bound)
    server.wait_for_termination()


async def serve_aio(host: str, port: int) -> None:
    """The grpc.aio server until SIGTERM/SIGINT."""
    server = grpc.aio.server()
    _register(_AioFloor(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _ready(bound)
    await stop.wait()
    await server.stop(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=ENGINES, default="aio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--threads", type=int, default=10, help="sync engine's thread pool")
    args = parser.parse_args(argv)
    if args.engine == "sync":
        serve_sync(args.host, args.port, args.threads)
    else:
        kind = "uvloop" if args.engine == "uvloop" else "asyncio"
        event_loop.run(serve_aio(args.host, args.port), kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
