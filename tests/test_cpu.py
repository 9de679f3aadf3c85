"""CpuPool: calls queued while the threads are busy share one hand-off, and each caller
still gets exactly its own result or exception."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from guardstream.cpu import CpuPool


async def test_results_and_errors_reach_their_own_callers() -> None:
    pool = CpuPool(2)

    def work(n: int) -> int:
        if n % 7 == 3:
            raise ValueError(f"bad {n}")
        return n * n

    outcomes = await asyncio.gather(*[pool.run(work, n) for n in range(40)],
                                    return_exceptions=True)
    pool.close()
    for n, outcome in enumerate(outcomes):
        if n % 7 == 3:
            assert isinstance(outcome, ValueError) and str(outcome) == f"bad {n}"
        else:
            assert outcome == n * n


async def test_calls_queued_behind_a_busy_thread_share_one_hand_off() -> None:
    pool = CpuPool(1)
    gate = threading.Event()
    first = asyncio.ensure_future(pool.run(gate.wait, 5.0))
    await asyncio.sleep(0.05)  # the first call holds the only thread
    rest = [asyncio.ensure_future(pool.run(lambda i=i: i + 1)) for i in range(30)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await first is True
    assert await asyncio.gather(*rest) == list(range(1, 31))
    pool.close()
    assert pool.handoffs <= 2  # one per call with run_in_executor: 31


async def test_threads_run_calls_in_parallel() -> None:
    pool = CpuPool(2)
    barrier = threading.Barrier(2, timeout=5)  # needs two calls running at once
    assert await asyncio.gather(pool.run(barrier.wait), pool.run(barrier.wait)) in ([0, 1],
                                                                                    [1, 0])
    pool.close()


async def test_results_come_back_while_the_thread_keeps_working() -> None:
    pool = CpuPool(1)
    started = time.monotonic()
    quick = asyncio.ensure_future(pool.run(lambda: "quick"))
    medium = asyncio.ensure_future(pool.run(time.sleep, 0.05))
    slow = asyncio.ensure_future(pool.run(time.sleep, 0.6))
    await asyncio.gather(quick, medium)
    assert time.monotonic() - started < 0.5  # not held back until the slow call ends
    assert not slow.done()
    await slow
    pool.close()


async def test_a_cancelled_queued_call_never_runs() -> None:
    pool = CpuPool(1)
    gate = threading.Event()
    ran: list[int] = []
    first = asyncio.ensure_future(pool.run(gate.wait, 5.0))
    await asyncio.sleep(0.05)
    queued = [asyncio.ensure_future(pool.run(ran.append, i)) for i in range(3)]
    await asyncio.sleep(0)
    queued[1].cancel()
    gate.set()
    await first
    await asyncio.gather(queued[0], queued[2])
    assert ran == [0, 2]
    pool.close()


async def test_close_cancels_what_is_queued_and_refuses_more() -> None:
    pool = CpuPool(1)
    gate = threading.Event()
    first = asyncio.ensure_future(pool.run(gate.wait, 5.0))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(pool.run(lambda: "never"))
    await asyncio.sleep(0)
    pool.close()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert await first is True  # a call already running still finishes
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(lambda: None)
