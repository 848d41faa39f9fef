"""Batcher behaviour with toy runtimes (echo, slow, failing) on a real event loop."""

import asyncio
import threading
import time
from collections import deque

import numpy as np
import pytest

from serving.batching.batcher import INLINE_PROBE, Batcher, BatchLimits, Pending, plan_batch
from serving.batching.compute import ComputePool
from serving.errors import DeadlineExceeded, ModelNotReady, Overloaded


class EchoRuntime:
    """Returns each row's first pixel and its row count, recording batch sizes."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.gate.wait(5)
        self.batches.append(x.shape[0])
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        return x.reshape(x.shape[0], -1)[:, :1].copy()


def make(runtime, max_batch=8, delay_s=0.0, queue=64):
    return Batcher(runtime, BatchLimits(max_batch, delay_s, queue), ComputePool(1), name="toy")


def images(n: int, value: float) -> np.ndarray:
    return np.full((n, 2, 2), value, dtype=np.float32)


# --- plan_batch on a controllable clock ---------------------------------------


def pending(n: int, at: float, deadline: float | None = None) -> Pending:
    loop = asyncio.new_event_loop()
    fut = loop.create_future()
    loop.close()
    return Pending(images(n, 0), fut, at, deadline)


def test_plan_waits_until_delay_from_first_request():
    limits = BatchLimits(max_batch_size=8, max_queue_delay_s=0.010, max_queue_images=100)
    queue = deque([pending(1, at=100.0), pending(1, at=100.004)])
    batch, wait = plan_batch(queue, 2, now=100.005, limits=limits, flush=False)
    assert batch is None
    assert wait == pytest.approx(0.005)
    batch, _ = plan_batch(queue, 2, now=100.010, limits=limits, flush=False)
    assert batch is not None and len(batch) == 2


def test_plan_cuts_at_max_batch_counting_images_not_requests():
    limits = BatchLimits(max_batch_size=4, max_queue_delay_s=1.0, max_queue_images=100)
    queue = deque([pending(3, 0.0), pending(2, 0.0), pending(1, 0.0)])
    batch, _ = plan_batch(queue, 6, now=0.0, limits=limits, flush=False)
    # 3 + 2 would exceed 4: the second request waits for the next batch.
    assert [p.count for p in batch] == [3]
    batch, _ = plan_batch(queue, 3, now=0.0, limits=limits, flush=True)
    assert [p.count for p in batch] == [2, 1]


def test_plan_runs_an_oversized_request_alone():
    limits = BatchLimits(max_batch_size=4, max_queue_delay_s=0.0, max_queue_images=100)
    queue = deque([pending(10, 0.0), pending(1, 0.0)])
    batch, _ = plan_batch(queue, 11, now=0.0, limits=limits, flush=False)
    assert [p.count for p in batch] == [10]


# --- the batcher on a real loop ------------------------------------------------


def test_concurrent_requests_of_different_sizes_get_their_own_rows():
    runtime = EchoRuntime()

    async def main():
        batcher = make(runtime, max_batch=16, delay_s=0.02)
        batcher.start()
        sizes = [1, 3, 2, 5, 1, 4]
        results = await asyncio.gather(
            *(batcher.submit(images(n, float(i))) for i, n in enumerate(sizes))
        )
        await batcher.close()
        return sizes, results

    sizes, results = asyncio.run(main())
    for i, (n, rows) in enumerate(zip(sizes, results, strict=True)):
        assert rows.shape == (n, 1)
        assert (rows == i).all()
    assert runtime.batches == [16]  # all six arrived within the delay: one batch


def test_batch_keeps_growing_while_model_is_busy():
    runtime = EchoRuntime(delay=0.05)

    async def main():
        batcher = make(runtime, max_batch=64, delay_s=0.0)
        batcher.start()
        first = asyncio.create_task(batcher.submit(images(1, 0)))
        await asyncio.sleep(0.01)  # first batch (of 1) is computing now
        rest = [asyncio.create_task(batcher.submit(images(1, i))) for i in range(10)]
        await asyncio.gather(first, *rest)
        await batcher.close()

    asyncio.run(main())
    assert runtime.batches == [1, 10]


def test_full_queue_is_refused_at_once():
    runtime = EchoRuntime()
    runtime.gate.clear()  # the model hangs until released

    async def main():
        batcher = make(runtime, max_batch=2, delay_s=0.0, queue=4)
        batcher.start()
        running = asyncio.create_task(batcher.submit(images(2, 0)))
        await asyncio.sleep(0.02)  # taken into a batch: the queue is empty again
        # The first full batch is handed to the compute queue behind the running
        # one; the next two wait in the batcher's queue and fill it.
        queued = [asyncio.create_task(batcher.submit(images(2, 1)))]
        await asyncio.sleep(0.01)
        assert batcher.queued_images == 0
        queued += [asyncio.create_task(batcher.submit(images(2, 1))) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert batcher.queued_images == 4
        with pytest.raises(Overloaded, match="queue full"):
            await batcher.submit(images(1, 2))
        runtime.gate.set()
        await asyncio.gather(running, *queued)
        await batcher.close()

    asyncio.run(main())


def test_expired_request_is_dropped_and_never_computed():
    runtime = EchoRuntime()
    runtime.gate.clear()

    async def main():
        batcher = make(runtime, max_batch=1, delay_s=0.0)
        batcher.start()
        blocker = asyncio.create_task(batcher.submit(images(1, 0)))
        await asyncio.sleep(0.02)
        doomed = asyncio.create_task(batcher.submit(images(1, 7), deadline=time.monotonic() + 0.01))
        await asyncio.sleep(0.05)
        runtime.gate.set()
        await blocker
        with pytest.raises(DeadlineExceeded, match="not computed"):
            await doomed
        await batcher.close()

    asyncio.run(main())
    assert runtime.batches == [1]  # the expired request never reached the model


def test_cancelled_request_frees_its_slot_immediately():
    runtime = EchoRuntime()
    runtime.gate.clear()

    async def main():
        batcher = make(runtime, max_batch=4, delay_s=0.0, queue=3)
        batcher.start()
        blocker = asyncio.create_task(batcher.submit(images(1, 0)))
        await asyncio.sleep(0.02)
        waiting = asyncio.create_task(batcher.submit(images(3, 1)))  # not a full batch: waits
        await asyncio.sleep(0.01)
        assert batcher.queued_images == 3
        waiting.cancel()
        await asyncio.sleep(0)
        assert batcher.queued_images == 0
        runtime.gate.set()
        await blocker
        await batcher.close()

    asyncio.run(main())
    assert runtime.batches == [1]


def test_a_full_batch_is_handed_over_while_one_computes():
    runtime = EchoRuntime()
    runtime.gate.clear()

    async def main():
        batcher = make(runtime, max_batch=2, delay_s=0.0, queue=64)
        batcher.start()
        first = asyncio.create_task(batcher.submit(images(2, 0)))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(batcher.submit(images(2, 1)))
        third = asyncio.create_task(batcher.submit(images(2, 2)))
        partial = asyncio.create_task(batcher.submit(images(1, 3)))
        await asyncio.sleep(0.02)
        # One computing, one handed over behind it, the rest still growing.
        assert batcher.queued_images == 3
        runtime.gate.set()
        results = await asyncio.gather(first, second, third, partial)
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert [int(r[0, 0]) for r in results] == [0, 1, 2, 3]
    assert runtime.batches[:2] == [2, 2]


def test_failure_reaches_exactly_the_requests_of_that_batch():
    runtime = EchoRuntime(fail=True)

    async def main():
        batcher = make(runtime, max_batch=4, delay_s=0.01)
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(images(1, i)) for i in range(3)), return_exceptions=True
        )
        runtime.fail = False
        ok = await batcher.submit(images(1, 9))
        await batcher.close()
        return results, ok

    results, ok = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert ok[0, 0] == 9


def test_close_drains_queue_then_refuses_new_work():
    runtime = EchoRuntime(delay=0.01)

    async def main():
        batcher = make(runtime, max_batch=1, delay_s=0.0)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(images(1, i))) for i in range(3)]
        await asyncio.sleep(0)
        await batcher.close()
        results = await asyncio.gather(*tasks)
        with pytest.raises(ModelNotReady):
            await batcher.submit(images(1, 0))
        return results

    results = asyncio.run(main())
    assert [int(r[0, 0]) for r in results] == [0, 1, 2]


# --- the idle fast path ------------------------------------------------------------------


def test_idle_request_skips_the_batching_loop():
    async def scenario():
        runtime = EchoRuntime()
        batcher = make(runtime)  # never started: only the fast path can answer
        out = await asyncio.wait_for(batcher.submit(images(2, 0.5)), 5)
        assert out.shape == (2, 1) and runtime.batches == [2]
        assert batcher.queued_images == 0

    asyncio.run(scenario())


def test_requests_arriving_during_a_lone_request_batch_together():
    async def scenario():
        runtime = EchoRuntime()
        batcher = make(runtime)
        batcher.start()
        runtime.gate.clear()
        first = asyncio.ensure_future(batcher.submit(images(1, 0.1)))
        await asyncio.sleep(0.05)  # the lone request is now blocked in the runtime
        rest = [asyncio.ensure_future(batcher.submit(images(1, v))) for v in (0.2, 0.3, 0.4)]
        await asyncio.sleep(0.05)
        assert batcher.queued_images == 3
        runtime.gate.set()
        outs = await asyncio.wait_for(asyncio.gather(first, *rest), 5)
        assert [float(o[0, 0]) for o in outs] == pytest.approx([0.1, 0.2, 0.3, 0.4])
        assert runtime.batches == [1, 3]
        await batcher.close()

    asyncio.run(scenario())


def test_a_batch_delay_still_makes_the_first_request_wait_for_company():
    async def scenario():
        runtime = EchoRuntime()
        batcher = make(runtime, delay_s=0.2)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(images(1, 0.1)))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(batcher.submit(images(1, 0.2)))
        await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert runtime.batches == [2]
        await batcher.close()

    asyncio.run(scenario())


def test_close_waits_for_a_lone_request_in_flight():
    async def scenario():
        runtime = EchoRuntime()
        batcher = make(runtime)
        batcher.start()
        runtime.gate.clear()
        lone = asyncio.ensure_future(batcher.submit(images(1, 0.7)))
        await asyncio.sleep(0.05)
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.05)
        assert not closing.done()
        runtime.gate.set()
        await asyncio.wait_for(closing, 5)
        assert lone.done() and float(lone.result()[0, 0]) == pytest.approx(0.7)

    asyncio.run(scenario())


def test_fast_models_run_inline_when_idle_and_slow_ones_move_to_the_compute_thread():
    async def scenario(delay: float, inline_s: float) -> list[str]:
        threads: list[str] = []

        def runtime(x: np.ndarray) -> np.ndarray:
            threads.append(threading.current_thread().name)
            time.sleep(delay)
            return x.reshape(x.shape[0], -1)[:, :1].copy()

        limits = BatchLimits(8, 0.0, 64, max_inline_compute_s=inline_s)
        batcher = Batcher(runtime, limits, ComputePool(1, name="compute"), name="toy")
        for _ in range(3):
            await batcher.submit(images(1, 0.5))
        return threads

    main = threading.current_thread().name
    # Budgets far from the runtimes, so a loaded machine cannot flip the outcome.
    assert asyncio.run(scenario(0.0, 1.0)) == [main] * 3
    assert asyncio.run(scenario(0.0, 0.0)) == ["compute-0"] * 3
    # 50 ms is over the 5 ms budget: the first run shows it, later ones leave the loop.
    assert asyncio.run(scenario(0.05, 0.005)) == [main, "compute-0", "compute-0"]


def test_inline_gives_way_to_batching_once_requests_wait_and_comes_back_when_they_stop():
    main = threading.current_thread().name

    async def scenario() -> tuple[list[str], list[int]]:
        threads: list[str] = []
        sizes: list[int] = []

        def runtime(x: np.ndarray) -> np.ndarray:
            name = threading.current_thread().name
            threads.append(name)
            sizes.append(x.shape[0])
            if name != main:
                time.sleep(0.05)  # long enough for the requests below to queue meanwhile
            return x.reshape(x.shape[0], -1)[:, :1].copy()

        limits = BatchLimits(8, 0.0, 64, max_inline_compute_s=1.0)
        batcher = Batcher(runtime, limits, ComputePool(1, name="compute"), name="toy")
        batcher.start()
        for _ in range(INLINE_PROBE - 1):
            await batcher.submit(images(1, 0.5))
        # The probe computes on the thread, and three requests arrive while it does.
        probe = asyncio.ensure_future(batcher.submit(images(1, 0.5)))
        await asyncio.sleep(0.01)
        waiting = [asyncio.ensure_future(batcher.submit(images(1, 0.5))) for _ in range(3)]
        await asyncio.wait_for(asyncio.gather(probe, *waiting), 5)
        # Requests waited: the next idle one goes to the thread too (so batches can form) ...
        await batcher.submit(images(1, 0.5))
        # ... finds nobody waiting, and the one after computes inline again.
        await batcher.submit(images(1, 0.5))
        await batcher.close()
        return threads, sizes

    threads, sizes = asyncio.run(scenario())
    compute = "compute-0"
    assert threads == [main] * (INLINE_PROBE - 1) + [compute, compute, compute, main]
    assert sizes == [1] * (INLINE_PROBE - 1) + [1, 3, 1, 1]


class CountingRuntime(EchoRuntime):
    """Echo that records the most batches it ever computed at once."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return super().__call__(x)
        finally:
            with self.lock:
                self.now -= 1


def test_full_batches_compute_on_every_instance_and_partial_ones_wait():
    runtime = CountingRuntime()
    runtime.gate.clear()

    async def main():
        limits = BatchLimits(2, 0.0, 64)
        batcher = Batcher(runtime, limits, ComputePool(2), name="toy", instances=2)
        batcher.start()
        first = asyncio.create_task(batcher.submit(images(2, 0)))
        await asyncio.sleep(0.02)
        full = [asyncio.create_task(batcher.submit(images(2, v))) for v in (1, 2)]
        partial = asyncio.create_task(batcher.submit(images(1, 3)))
        # Both instances come to hold a full batch (a loaded machine may take a while to
        # start the second thread), a third full one waits in the compute queue; the
        # partial batch keeps growing.
        for _ in range(500):
            if runtime.now == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert runtime.now == 2
        assert batcher.queued_images == 1
        runtime.gate.set()
        results = await asyncio.gather(first, *full, partial)
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert [int(r[0, 0]) for r in results] == [0, 1, 2, 3]
    assert runtime.most == 2
