"""The naive baseline: what a first attempt at serving these models usually looks like.

A synchronous ``grpc.server`` with a thread pool, implementing KServe V2
``ModelInfer`` by calling ``session.run`` once per request: no batching, no
asyncio. By default the sessions use exactly the digits server's options
(intra-op threads = CPU budget, spinning off, batches under 32 images on a one-thread
copy: serving.runtime.onnx.Sessions) so the comparison isolates the
serving architecture, not onnxruntime tuning; ``--session-options default``
uses onnxruntime's defaults instead (threads = all cores, spinning on), which
is what ``InferenceSession(path)`` in a first attempt gets.

    python bench/naive_server.py --model-repository DIR [--port 0] [--workers 10]

Prints ``naive-server ready grpc=N http=-1 metrics=-1 pid=P`` once listening (the digits
server's ready line, parsed by clients.server_process); SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import grpc
import numpy as np
import onnxruntime as ort
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from clients.server_process import ReadyLine
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc as pb_grpc
from serving.runtime.onnx import RuntimeConfig, Sessions
from serving.runtime.providers import cpu_budget
from serving.settings import Settings


class NaiveV2Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """ModelInfer straight onto ``session.run``, one request at a time per thread."""

    def __init__(self, sessions: dict[str, Sessions]) -> None:
        self._sessions = sessions

    def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        sessions = self._sessions.get(request.model_name)
        if sessions is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"model {request.model_name!r} not found")
        if len(request.inputs) != 1 or len(request.raw_input_contents) != 1:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "send one FP32 input as raw contents")
        tensor = request.inputs[0]
        images = np.frombuffer(request.raw_input_contents[0], dtype="<f4").reshape(
            list(tensor.shape)
        )
        session = sessions.for_batch(images.shape[0])
        output = session.get_outputs()[0]
        result = session.run([output.name], {session.get_inputs()[0].name: images})[0]
        response = pb.ModelInferResponse(
            model_name=request.model_name,
            model_version="1",
            id=request.id,
            raw_output_contents=[np.ascontiguousarray(result, dtype="<f4").tobytes()],
        )
        response.outputs.add(name=output.name, datatype="FP32", shape=list(result.shape))
        response.parameters["provider"].string_param = session.get_providers()[0]
        return response


def load_sessions(root: Path, threads: int, defaults: bool = False) -> dict[str, Sessions]:
    """One session per model directory (its highest numbered version).

    ``defaults`` takes onnxruntime's own session options instead of the server's.
    """
    config = RuntimeConfig(
        provider="cpu", intra_op_threads=threads, parallel_min_batch=Settings().parallel_min_batch
    )
    sessions = {}
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        versions = [
            d for d in model_dir.iterdir() if d.name.isdigit() and (d / "model.onnx").is_file()
        ]
        if not versions:
            continue
        latest = max(versions, key=lambda d: int(d.name))
        path = latest / "model.onnx"
        if defaults:
            plain = ort.InferenceSession(str(path), providers=config.providers())
            sessions[model_dir.name] = Sessions(plain, None, 0)
        else:
            sessions[model_dir.name] = Sessions.open(path, config)
    return sessions


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-repository", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--workers", type=int, default=10, help="thread pool size")
    parser.add_argument(
        "--intra-op-threads", type=int, default=0, help="0 = the CPU budget, like the server"
    )
    parser.add_argument(
        "--session-options",
        choices=("server", "default"),
        default="server",
        help="server: the digits server's session options; default: onnxruntime's defaults",
    )
    args = parser.parse_args(argv)
    sessions = load_sessions(
        args.model_repository,
        args.intra_op_threads or cpu_budget(),
        defaults=args.session_options == "default",
    )
    if not sessions:
        print(f"naive-server: no models in {args.model_repository}", file=sys.stderr)
        return 1
    options = [
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ]
    server = grpc.server(ThreadPoolExecutor(max_workers=args.workers), options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(NaiveV2Servicer(sessions), server)
    checker = health.HealthServicer()
    checker.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stop(1)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"naive-server: models {sorted(sessions)}", flush=True)
    print(ReadyLine("naive-server", port, None, None, os.getpid()).format(), flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
