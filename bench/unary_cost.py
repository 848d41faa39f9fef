"""Where a batch-1 V2 ``ModelInfer`` spends the server's CPU in *our* code (issue 13).

    python -m bench.unary_cost [--model mlp100]

Each step of the unary path that this project owns is timed on its own in process (CPU
microseconds per call, best of 5 rounds): protobuf parse, wire decoding, the core's checks,
the batcher's idle path with the model, the response build and serialisation, and the
interceptor's bookkeeping (request context, metrics). Then the whole wrapped V2 handler
(serving/grpc/calls.py around the servicer, as the server registers it) with 2 and 64 callers
in flight on the event loop (and 64-image requests with 4), so batches form and every
per-batch cost (batcher, compute-thread hand-off, metrics) is shared as in a loaded server:
CPU of the whole process (compute threads included) per call. What gRPC's own machinery costs
per call (not ours) is the rest of the server's measured CPU per request, e.g. from
bench.scaling.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc
import numpy as np

from bench.servers import in_process_settings
from serving import event_loop
from serving.api import open_inference_pb2 as pb
from serving.app import ServerApp
from serving.dataplane import DataPlane
from serving.grpc.calls import CallHandling, RequestIds
from serving.grpc.v2_converters import inputs_from_pb, response_to_pb
from serving.grpc.v2_servicer import V2Servicer
from serving.metrics import Metrics
from serving.request_context import RequestInfo, current_request

ROUNDS, CALLS = 5, 2000
# (images per request, callers in flight) of the whole-handler rows: batch 1 as a lone pair
# and as h2load's 16x4, batch 64 as h2load's 4x1.
IN_FLIGHT = ((1, 2), (1, 64), (64, 4))


def _best(step: Callable[[], object]) -> float:
    """Best-of-rounds CPU microseconds per call."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(CALLS):
            step()
        best = min(best, (time.process_time() - start) / CALLS)
    return best * 1e6


async def _best_async(step: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(CALLS):
            await step()  # type: ignore[misc]
        best = min(best, (time.process_time() - start) / CALLS)
    return best * 1e6


def v2_request(model: str, batch: int) -> pb.ModelInferRequest:
    """A V2 request of ``batch`` random 28x28 FP32 images for ``model``."""
    images = np.random.default_rng(0).random((batch, 28, 28), dtype=np.float32)
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="images", datatype="FP32", shape=[batch, 28, 28])
    request.raw_input_contents.append(images.tobytes())
    return request


class _Context:
    """Stands in for grpc.aio's servicer context: the calls our handler makes on it."""

    def invocation_metadata(self) -> tuple:
        return ()

    def set_trailing_metadata(self, metadata: tuple) -> None:
        self.trailing = metadata

    def time_remaining(self) -> None:
        return None

    def set_code(self, code: grpc.StatusCode) -> None:
        raise AssertionError(f"the benchmark's call failed: {code}")

    def set_details(self, details: str) -> None:
        pass


def v2_handler(core: DataPlane, metrics: Metrics) -> Callable[[bytes], Awaitable[bytes]]:
    """Request bytes -> response bytes through the wrapped V2 ``ModelInfer`` handler, as the
    server registers it (serving/grpc/calls.py around the servicer), without gRPC itself."""
    wrapped = CallHandling(metrics, RequestIds()).wrap(
        "/inference.GRPCInferenceService/ModelInfer",
        grpc.unary_unary_rpc_method_handler(
            V2Servicer(core, 16).ModelInfer,
            request_deserializer=pb.ModelInferRequest.FromString,
            response_serializer=pb.ModelInferResponse.SerializeToString,
        ),
    )
    parse, handle = wrapped.request_deserializer, wrapped.unary_unary
    serialise = wrapped.response_serializer

    async def call(wire: bytes) -> bytes:
        return serialise(await handle(parse(wire), _Context()))

    return call


async def _handler_in_flight(
    core: DataPlane, metrics: Metrics, wire: bytes, batch: int, in_flight: int
) -> float:
    """Best-of-rounds process CPU microseconds per call of the wrapped V2 handler, with
    ``in_flight`` callers each parsing, handling and serialising one call after another."""
    call = v2_handler(core, metrics)

    async def caller(calls: int) -> None:
        for _ in range(calls):
            await call(wire)

    # A 64-image call costs ~30-60x a one-image one: fewer of them keep the row's time sane.
    per_caller = max(1, CALLS // in_flight // (16 if batch > 1 else 1))
    await asyncio.gather(*(caller(per_caller) for _ in range(in_flight)))  # warm-up
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        await asyncio.gather(*(caller(per_caller) for _ in range(in_flight)))
        best = min(best, (time.process_time() - start) / (per_caller * in_flight))
    return best * 1e6


async def measure(model: str) -> list[tuple[str, float]]:
    """(step, CPU us per call) for one batch-1 request to ``model``."""
    app = ServerApp(in_process_settings())
    await app.start()
    try:
        request = v2_request(model, 1)
        wire = request.SerializeToString()
        images = inputs_from_pb(request)[0][1]
        core = app.dataplane
        target = core.resolve(model)
        inputs = inputs_from_pb(request)
        result = await core.infer(model, "", inputs)
        metrics = app.metrics
        requests = metrics.requests.labels(model, "1", "v2", "ModelInfer", "OK")
        seconds = metrics.request_seconds.labels(model, "v2", "ModelInfer")

        def bookkeeping() -> None:
            info = RequestInfo("abc-1", "v2", "ModelInfer")
            current_request.set(info)
            metrics.inflight.inc()
            metrics.inflight.dec()
            requests.inc()
            seconds.observe(info.finish("OK"))

        steps = [
            ("parse request (protobuf)", _best(lambda: pb.ModelInferRequest.FromString(wire))),
            ("wire decoding (inputs_from_pb)", _best(lambda: inputs_from_pb(request))),
            (
                "core checks (resolve + check_tensor)",
                _best(lambda: core.check_tensor(core.resolve(model), inputs[0][1], "images")),
            ),
            ("bare session.run (onnxruntime)", _best(lambda: target.model.run(images))),
            (
                "core.infer end to end (idle path)",
                await _best_async(lambda: core.infer(model, "", inputs)),
            ),
            ("response build (response_to_pb)", _best(lambda: response_to_pb(result, "abc"))),
            (
                "response serialise",
                _best(lambda: response_to_pb(result, "abc").SerializeToString()),
            ),
            ("interceptor bookkeeping (context, metrics)", _best(bookkeeping)),
        ]
        for batch, in_flight in IN_FLIGHT:
            calls = v2_request(model, batch).SerializeToString()
            steps.append(
                (
                    f"whole V2 handler, batch {batch}, {in_flight} in flight (process CPU)",
                    await _handler_in_flight(core, metrics, calls, batch, in_flight),
                )
            )
        return steps
    finally:
        await app.stop(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.unary_cost", description=__doc__)
    parser.add_argument("--model", default="mlp100")
    args = parser.parse_args(argv)
    # The server's own event loop (uvloop where installed), as the whole-handler rows assume.
    for name, micros in event_loop.run(measure(args.model)):
        print(f"{name:45} {micros:8.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
