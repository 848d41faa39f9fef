"""What one ``session.run`` costs when the caches are cold, as they are inside a busy server.

    python -m bench.cold_cache [--model null|mlp100|cnn] [--sweeps-mb 0,1,8]

In a loop, ``session.run`` on a batch of one finds onnxruntime's code and data in the CPU
caches; in a server, the gRPC library, the event loop, the kernel's TCP path and our Python
run between two calls and evict them. This measures batch-1 ``session.run`` CPU time (the
calling thread's, ``time.thread_time``) after reading ``N`` MB of unrelated memory before
each call, for each ``N``: 0 is the microbenchmark figure, a sweep larger than the L2 cache
is closer to what the server sees (docs/performance.md, "Why each remaining gap").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.host import ROOT
from bench.models import NULL_MODEL, build_repository
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


def main(argv: Sequence[str] | None = None) -> int:
    """Print CPU per run for each sweep size."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold_cache", description=__doc__)
    parser.add_argument("--model", default=NULL_MODEL)
    parser.add_argument("--sweeps-mb", default="0,1,8", help="comma-separated MB to read")
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repository = Path(tmp) / "models"
        build_repository(repository, ROOT / "model_repository")
        session = session_for(args.model, repository)
        for mb in (int(x) for x in args.sweeps_mb.split(",")):
            us = cpu_per_run_us(session, mb, args.calls)
            print(f"{args.model}: batch-1 session.run after a {mb} MB sweep: {us:.1f} us CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
