"""The transport floor: a KServe V2 gRPC server that runs no model and no code of ours.

Every ``ModelInfer`` gets one fixed answer (zero probabilities, ``--rows`` x 10 FP32, 1 by
default; 64 for the batch-64 floor), built once; the request is parsed and dropped.
The method is served from a generic handler only, as the digits server serves its methods
(serving/grpc/methods.py): grpc.aio's registered methods cost a task per method on every call.
What such a server costs per call is what the gRPC library, the event loop and the kernel
cost; no server on the same library can be cheaper. Three engines, to see which floor is
lowest on this machine:

- ``aio``: ``grpc.aio.server`` on asyncio's own event loop,
- ``uvloop``: the same on uvloop (the digits server's default, serving/event_loop.py),
- ``sync``: ``grpc.server`` with a thread pool (what the naive server uses).

    python bench/floor_server.py --engine aio [--port 0] [--rows 64] [--option NAME=INT ...]

At batch 64 (200 KB requests) a process that allocates nothing else lets glibc return each
message's memory to the kernel and fault it in again on the next call (~80 page faults per
call measured, ~9-11 us of CPU per image instead of ~6-8); the servers with a model keep
their heaps warm (<1 fault per call), so the floor sets glibc's mmap and trim thresholds at
start (``--keep-malloc`` leaves them) to stay a floor for them.

``--option`` adds a gRPC channel argument (e.g. ``grpc.http2.max_frame_size=65536``), to A/B
what the library itself can do with 200 KB requests.

Prints ``floor-server ready grpc=N http=-1 metrics=-1 pid=P`` once listening; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
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


def fixed_answer(rows: int = 1) -> pb.ModelInferResponse:
    """The one answer: what the null model would return for ``rows`` images, uncomputed."""
    answer = pb.ModelInferResponse(
        model_name="null",
        model_version="1",
        raw_output_contents=[np.zeros((rows, 10), dtype="<f4").tobytes()],
    )
    answer.outputs.add(name="probabilities", datatype="FP32", shape=[rows, 10])
    return answer


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_heap_warm(mmap_bytes: int = 4 << 20, trim_bytes: int = 64 << 20) -> bool:
    """Serve 200 KB messages from the heap and keep it (glibc only); whether it applied."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_bytes)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, trim_bytes)
    )


def parse_option(text: str) -> tuple[str, int]:
    """``NAME=INT`` as a gRPC channel argument."""
    name, _, value = text.partition("=")
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=INT, got {text!r}") from None


class _SyncFloor(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, rows: int) -> None:
        self._answer = fixed_answer(rows)

    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        return self._answer


class _AioFloor(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, rows: int) -> None:
        self._answer = fixed_answer(rows)

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


Options = Sequence[tuple[str, int]]


def serve_sync(host: str, port: int, threads: int, rows: int, options: Options) -> None:
    """The synchronous server until SIGTERM/SIGINT."""
    server = grpc.server(ThreadPoolExecutor(max_workers=threads), options=list(options))
    _register(_SyncFloor(rows), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.stop(1))
    _ready(bound)
    server.wait_for_termination()


async def serve_aio(host: str, port: int, rows: int, options: Options) -> None:
    """The grpc.aio server until SIGTERM/SIGINT."""
    server = grpc.aio.server(options=list(options))
    _register(_AioFloor(rows), server)
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
    parser.add_argument("--rows", type=int, default=1, help="rows of the fixed answer")
    parser.add_argument(
        "--option", type=parse_option, action="append", default=[], help="NAME=INT channel arg"
    )
    parser.add_argument(
        "--keep-malloc", action="store_true", help="leave glibc's malloc thresholds as they are"
    )
    args = parser.parse_args(argv)
    if not args.keep_malloc:
        keep_heap_warm()
    if args.engine == "sync":
        serve_sync(args.host, args.port, args.threads, args.rows, args.option)
    else:
        kind = "uvloop" if args.engine == "uvloop" else "asyncio"
        event_loop.run(serve_aio(args.host, args.port, args.rows, args.option), kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
