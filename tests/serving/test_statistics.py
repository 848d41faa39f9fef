"""Triton statistics counted in the core: the accumulator, and the data plane on a live server."""

import asyncio
import io
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from serving.batching.batcher import Batcher, BatchLimits, FanOut
from serving.batching.compute import ComputePool
from serving.errors import DeadlineExceeded, InvalidInput, ModelNotFound, Overloaded
from serving.statistics import VersionStats
from serving.types import BatchStat, DurationStat
from tests.helpers.requests import random_images

# --- the accumulator -----------------------------------------------------------------


def test_batches_count_images_requests_and_sizes():
    stats = VersionStats("m", "3")
    before = time.time_ns() // 1_000_000
    stats.batch_done(5, [0.001, 0.003], 0.002)
    stats.batch_done(1, [0.0005], 0.001)
    stats.batch_done(5, [0.002], 0.004)
    snap = stats.snapshot()
    assert (snap.name, snap.version) == ("m", "3")
    assert snap.inference_count == 11 and snap.execution_count == 3
    assert snap.queue == DurationStat(4, 6_500_000)
    # Each request is charged its batch's compute time, as Triton does.
    assert snap.compute_infer == DurationStat(4, 2 * 2_000_000 + 1_000_000 + 4_000_000)
    assert snap.batch_stats == (
        BatchStat(1, DurationStat(1, 1_000_000)),
        BatchStat(5, DurationStat(2, 6_000_000)),
    )
    assert before <= snap.last_inference_ms <= time.time_ns() // 1_000_000
    assert snap.success == snap.fail == DurationStat(0, 0)


def test_request_timer_counts_success_or_failure_and_never_swallows():
    stats = VersionStats("m", "1")
    with stats.request():
        time.sleep(0.001)
    with pytest.raises(ValueError), stats.request():
        raise ValueError("bad")
    snap = stats.snapshot()
    assert snap.success.count == 1 and snap.success.ns >= 1_000_000
    assert snap.fail.count == 1 and 0 < snap.fail.ns < snap.success.ns
    assert snap.last_inference_ms == 0 and snap.execution_count == 0


def test_requests_dropped_at_compute_time_are_not_counted_as_computed():
    """A request whose deadline passes behind a running batch never reaches compute stats."""
    started, gate = threading.Event(), threading.Event()

    def run(x: np.ndarray) -> np.ndarray:
        started.set()
        gate.wait(5)
        return x.reshape(x.shape[0], -1)[:, :1]

    async def scenario() -> VersionStats:
        stats = VersionStats("toy", "1")
        pool = ComputePool(1)
        batcher = Batcher(run, BatchLimits(8, 0.0, 64), pool, observer=FanOut(stats))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.zeros((2, 2, 2), np.float32)))
        await asyncio.to_thread(started.wait, 5)
        late = asyncio.ensure_future(
            batcher.submit(np.zeros((1, 2, 2), np.float32), time.monotonic() + 0.02)
        )
        await asyncio.sleep(0.05)
        gate.set()
        await first
        with pytest.raises(DeadlineExceeded):
            await late
        await batcher.close()
        pool.shutdown()
        return stats

    snap = asyncio.run(scenario()).snapshot()
    assert snap.execution_count == 1 and snap.inference_count == 2
    assert snap.queue.count == 1 and snap.compute_infer.count == 1


# --- the data plane on a live server -------------------------------------------------


def on_loop(server, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` on the server's event loop (where the counters live); await it if async."""

    async def call() -> Any:
        result = fn(*args, **kwargs)
        return await result if asyncio.iscoroutine(result) else result

    return server.call(call())


def stats_of(server, model: str = "cnn"):
    (snap,) = on_loop(server, server.app.dataplane.model_statistics, model)
    return snap


def tensors(n: int) -> list[tuple[str, np.ndarray]]:
    """One V2 input tensor of ``n`` images, as the transports hand it to the core."""
    return [("images", random_images(n))]


def png() -> bytes:
    """A dark 40x30 image with a light bar: a digit-like stroke."""
    pixels = np.zeros((40, 30), dtype=np.uint8)
    pixels[8:32, 13:17] = 255
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_every_inference_door_counts_success_and_failure(server):
    dp = server.app.dataplane
    on_loop(server, dp.infer, "cnn", "", tensors(2))
    on_loop(server, dp.classify_pixels, "cnn", "", np.zeros((5, 28, 28), np.uint8))
    on_loop(server, dp.classify_encoded, "cnn", "", [png()])
    failures = [
        (dp.infer, ("cnn", "", [("images", random_images(1).astype(np.float64))])),  # dtype
        (dp.infer, ("cnn", "", tensors(1) + tensors(1))),  # two inputs
        (dp.infer, ("cnn", "", tensors(1), None, ["nope"])),  # unknown output
        (dp.classify_pixels, ("cnn", "", np.zeros((1, 28, 28), np.int16))),
        (dp.classify_encoded, ("cnn", "", [b"not an image"])),
    ]
    for fn, args in failures:
        with pytest.raises(InvalidInput):
            on_loop(server, fn, *args)
    snap = stats_of(server)
    assert snap.success.count == 3 and snap.fail.count == len(failures)
    assert snap.inference_count == 2 + 5 + 1 and snap.execution_count == 3
    assert [b.batch_size for b in snap.batch_stats] == [1, 2, 5]
    # Unknown models fail before any model is chosen: nothing to count them against.
    with pytest.raises(ModelNotFound):
        on_loop(server, dp.infer, "nope", "", tensors(1))
    assert stats_of(server).fail.count == len(failures)


def test_expired_deadline_counts_as_failure(server):
    dp = server.app.dataplane
    with pytest.raises(DeadlineExceeded):
        on_loop(server, dp.infer, "cnn", "", tensors(1), time.monotonic() - 1)
    snap = stats_of(server)
    assert snap.fail.count == 1 and snap.success.count == 0 and snap.execution_count == 0


def test_full_queue_counts_as_failure(make_server):
    server = make_server(max_queue_images=4)
    with pytest.raises(Overloaded):
        on_loop(server, server.app.dataplane.infer, "cnn", "", tensors(5))
    snap = stats_of(server)
    assert snap.fail.count == 1 and snap.inference_count == 0


def test_statistics_and_prometheus_see_the_same_batches(server):
    dp = server.app.dataplane
    for n in (1, 3, 4):
        on_loop(server, dp.infer, "cnn", "", tensors(n))
    images = server.app.metrics.registry.get_sample_value(
        "digits_images_total", {"model": "cnn", "version": "1"}
    )
    assert images == stats_of(server).inference_count == 8


def test_statistics_selection(server):
    dp = server.app.dataplane
    everything = on_loop(server, dp.model_statistics)
    assert [(s.name, s.version) for s in everything] == [("cnn", "1"), ("one_vs_rest", "1")]
    assert [s.name for s in on_loop(server, dp.model_statistics, "cnn", "1")] == ["cnn"]
    for args in (("nope",), ("cnn", "7")):
        with pytest.raises(ModelNotFound):
            on_loop(server, dp.model_statistics, *args)
    with pytest.raises(InvalidInput):
        on_loop(server, dp.model_statistics, "", "1")
    # Draining refuses inference but still answers statistics.
    dp.drain()
    assert len(on_loop(server, dp.model_statistics)) == 2


def test_config_follows_settings_and_provider(make_server):
    server = make_server(max_batch_size=8, max_queue_delay_us=2500, max_versions=3)
    dp = server.app.dataplane
    config = on_loop(server, dp.model_config, "one_vs_rest")
    assert (config.name, config.platform, config.backend) == (
        "one_vs_rest",
        "onnxruntime_onnx",
        "onnxruntime",
    )
    assert config.max_batch_size == 8 and config.max_queue_delay_us == 2500
    assert config.versions_kept == 3 and config.instance_kind == "KIND_CPU"
    assert [(t.name, t.datatype, t.shape) for t in config.inputs] == [
        ("images", "FP32", (-1, 28, 28))
    ]
    assert [t.shape for t in config.outputs] == [(-1, 1)]
    assert config.labels == ("not 1", "1")
    # The kind follows the provider the session really got (no GPU here: set it by hand).
    target = on_loop(server, dp.resolve, "one_vs_rest")
    target.model.provider = "CUDAExecutionProvider"
    assert on_loop(server, dp.model_config, "one_vs_rest").instance_kind == "KIND_GPU"
    with pytest.raises(ModelNotFound):
        on_loop(server, dp.model_config, "one_vs_rest", "2")


def test_merge_adds_workers_counters_and_wire_round_trips() -> None:
    from serving.statistics import merge_statistics, stats_from_wire, stats_to_wire
    from serving.types import BatchStat, DurationStat, ModelStats

    def snap(version: str, images: int, last: int, batches: dict[int, int]) -> ModelStats:
        return ModelStats(
            name="cnn",
            version=version,
            last_inference_ms=last,
            inference_count=images,
            execution_count=len(batches),
            success=DurationStat(images, 10 * images),
            fail=DurationStat(1, 5),
            queue=DurationStat(images, 2 * images),
            compute_infer=DurationStat(images, 3 * images),
            batch_stats=tuple(
                BatchStat(size, DurationStat(n, 7 * n)) for size, n in sorted(batches.items())
            ),
        )

    one = [snap("1", 4, 100, {1: 2, 2: 1}), snap("2", 1, 50, {1: 1})]
    two = [snap("2", 3, 80, {1: 1, 2: 1}), snap("1", 6, 90, {4: 1})]
    wire = [[stats_from_wire(stats_to_wire(s)) for s in group] for group in (one, two)]
    assert wire == [one, two]
    v1, v2 = merge_statistics(wire)
    assert (v1.version, v1.inference_count, v1.last_inference_ms) == ("1", 10, 100)
    assert v1.success == DurationStat(10, 100) and v1.fail == DurationStat(2, 10)
    sizes = [(b.batch_size, b.compute_infer.count) for b in v1.batch_stats]
    assert sizes == [(1, 2), (2, 1), (4, 1)]
    assert (v2.inference_count, v2.last_inference_ms, v2.execution_count) == (4, 80, 3)
    assert merge_statistics([one]) == one
