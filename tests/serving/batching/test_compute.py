import asyncio
import threading

import pytest

from serving.batching.compute import ComputePool


def test_runs_off_the_loop_thread_and_returns_results():
    pool = ComputePool(2)

    async def main():
        loop_thread = threading.get_ident()
        threads = await asyncio.gather(
            *(pool.run(lambda _: threading.get_ident(), i) for i in range(8))
        )
        assert loop_thread not in threads
        return await pool.run(lambda x: x * 2, 21)

    assert asyncio.run(main()) == 42
    pool.shutdown()


def test_exceptions_reach_the_awaiting_caller():
    pool = ComputePool(1)

    def boom(_):
        raise ValueError("bad batch")

    async def main():
        with pytest.raises(ValueError, match="bad batch"):
            await pool.run(boom, None)
        return await pool.run(lambda x: x, "still working")

    assert asyncio.run(main()) == "still working"
    pool.shutdown()


def test_a_cancelled_waiter_does_not_break_the_pool():
    pool = ComputePool(1)
    gate = threading.Event()

    async def main():
        slow = pool.run(lambda _: gate.wait(5), None)
        slow.cancel()
        gate.set()
        await asyncio.sleep(0.05)
        return await pool.run(lambda x: x + 1, 1)

    assert asyncio.run(main()) == 2
    pool.shutdown()
