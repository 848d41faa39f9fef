"""Where a batch-1 V2 ``ModelInfer`` spends the server's CPU in *our* code (issue 13).

    python -m bench.unary_cost [--model mlp100]

Each step of the unary path that this project owns is timed on its own in process (CPU
microseconds per call, best of 5 rounds): protobuf parse, wire decoding, the core's checks,
the batcher's idle path with the model, the response build and serialisation, and the
interceptor's bookkeeping (request context, metrics). What gRPC's own machinery costs per call
(not ours) is the rest of the server's measured CPU per request, e.g. from bench.scaling.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.servers import in_process_settings
from serving.api import open_inference_pb2 as pb
from serving.app import ServerApp
from serving.grpc.v2_converters import inputs_from_pb, response_to_pb
from serving.request_context import RequestInfo, current_request

ROUNDS, CALLS = 5, 2000


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


async def measure(model: str) -> list[tuple[str, float]]:
    """(step, CPU us per call) for one batch-1 request to ``model``."""
    app = ServerApp(in_process_settings())
    await app.start()
    try:
        images = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
        request = pb.ModelInferRequest(model_name=model)
        request.inputs.add(name="images", datatype="FP32", shape=[1, 28, 28])
        request.raw_input_contents.append(images.tobytes())
        wire = request.SerializeToString()
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
        return steps
    finally:
        await app.stop(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.unary_cost", description=__doc__)
    parser.add_argument("--model", default="mlp100")
    args = parser.parse_args(argv)
    for name, micros in asyncio.run(measure(args.model)):
        print(f"{name:45} {micros:8.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
