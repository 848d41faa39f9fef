"""What one ``session.run`` costs when the caches are cold, as they are inside a busy server.

    python -m bench.cold_cache [--model null|mlp100|cnn] [--sweeps-mb 0,1,8] [--handler]

In a loop, ``session.run`` on a batch of one finds onnxruntime's code and data in the CPU
caches; in a server, the gRPC library, the event loop, the kernel's TCP path and our Python
run between two calls and evict them. This measures batch-1 ``session.run`` CPU time (the
calling thread's, ``time.thread_time``) after reading ``N`` MB of unrelated memory before
each call, for each ``N``: 0 is the microbenchmark figure, a sweep larger than the L2 cache
is closer to what the server sees (docs/performance.md, "Why each remaining gap").
``--handler`` times the whole wrapped V2 ``ModelInfer`` handler instead (parse to serialised
answer, in a server started in this process, one call at a time: the idle path a lone call
takes), the median call's CPU: what a c=1 call costs the event loop (docs/performance.md,
"c=1 latency").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.host import ROOT
from bench.models import NULL_MODEL, build_repository
from bench.servers import in_process_settings
from bench.unary_cost import v2_handler, v2_request
from serving import event_loop
from serving.app import ServerApp
from serving.runtime.onnx import RuntimeConfig

CALLS = 3000


def session_for(model: str, repository: Path) -> ort.InferenceSession:
    """The model's newest version with the server's own session options (1 intra-op thread)."""
    versions = sorted((repository / model).iterdir(), key=lambda p: int(p.name))
    config = RuntimeConfig(provider="cpu", intra_op_threads=1)
    return ort.InferenceSession(
        str(versions[-1] / "model.onnx"),
        sess_options=config.session_options(),
        providers=config.providers(),
    )


def cpu_per_run_us(session: ort.InferenceSession, sweep_mb: int, calls: int = CALLS) -> float:
    """Mean calling-thread CPU microseconds of one batch-1 run after a ``sweep_mb`` MB read."""
    images = np.zeros((1, 28, 28), dtype=np.float32)
    feed = {session.get_inputs()[0].name: images}
    outputs = [session.get_outputs()[0].name]
    junk = np.ones(max(sweep_mb, 1) * 1024 * 1024 // 8)
    for _ in range(100):
        session.run(outputs, feed)
    total = 0.0
    for _ in range(calls):
        if sweep_mb:
            junk.sum()  # reads every byte: evicts what the run left in the caches
        start = time.thread_time()
        session.run(outputs, feed)
        total += time.thread_time() - start
    return total / calls * 1e6


async def handler_cpu_us(
    repository: Path, model: str, sweeps_mb: list[int], calls: int
) -> list[float]:
    """Median calling-thread CPU microseconds of one batch-1 call of the whole V2 handler
    after a ``mb`` MB read, for each of ``sweeps_mb``."""
    app = ServerApp(in_process_settings(repository))
    await app.start()
    try:
        call = v2_handler(app.dataplane, app.metrics)
        wire = v2_request(model, 1).SerializeToString()
        for _ in range(200):
            await call(wire)
        medians = []
        for mb in sweeps_mb:
            junk = np.ones(max(mb, 1) * 1024 * 1024 // 8)
            spent = []
            for _ in range(calls):
                if mb:
                    junk.sum()
                start = time.thread_time()
                await call(wire)
                spent.append(time.thread_time() - start)
            medians.append(statistics.median(spent) * 1e6)
        return medians
    finally:
        await app.stop(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    """Print CPU per run for each sweep size."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold_cache", description=__doc__)
    parser.add_argument("--model", default=NULL_MODEL)
    parser.add_argument("--sweeps-mb", default="0,1,8", help="comma-separated MB to read")
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument(
        "--handler", action="store_true", help="the whole V2 handler instead of session.run"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repository = Path(tmp) / "models"
        build_repository(repository, ROOT / "model_repository")
        sweeps = [int(x) for x in args.sweeps_mb.split(",")]
        if args.handler:
            medians = event_loop.run(handler_cpu_us(repository, args.model, sweeps, args.calls))
            for mb, us in zip(sweeps, medians, strict=True):
                print(f"{args.model}: whole V2 handler after a {mb} MB sweep: {us:.1f} us CPU")
            return 0
        session = session_for(args.model, repository)
        for mb in sweeps:
            us = cpu_per_run_us(session, mb, args.calls)
            print(f"{args.model}: batch-1 session.run after a {mb} MB sweep: {us:.1f} us CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
