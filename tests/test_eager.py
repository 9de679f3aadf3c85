"""`start_eagerly`/`resume`: a coroutine started in the caller's task behaves as under a task."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from guardstream.eager import start_eagerly


async def _returns(value: Any) -> Any:
    return value


async def _raises() -> None:
    raise ValueError("boom")


async def _yields_then_returns(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


async def _sleeps_then_returns(value: Any) -> Any:
    await asyncio.sleep(0.01)
    return value


async def test_a_coroutine_that_never_waits_finishes_in_the_callers_step() -> None:
    ran: list[str] = []

    async def record() -> str:
        ran.append("ran")
        return "value"

    started = start_eagerly(record())
    assert ran == ["ran"]  # before any event-loop iteration
    assert started.done
    assert started.value == "value"
    assert started.pending is None


async def test_an_exception_before_the_first_wait_propagates() -> None:
    with pytest.raises(ValueError, match="boom"):
        start_eagerly(_raises())


@pytest.mark.parametrize("coro_fn", [_yields_then_returns, _sleeps_then_returns])
async def test_a_coroutine_that_waits_is_finished_by_resume(coro_fn: Any) -> None:
    started = start_eagerly(coro_fn(42))
    assert not started.done
    assert started.pending is not None
    assert await started.pending == 42


async def test_a_blocked_queue_put_completes_once_there_is_room() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(1)
    started = start_eagerly(queue.put(2))
    assert not started.done
    assert started.pending is not None
    task = asyncio.ensure_future(started.pending)
    await asyncio.sleep(0.01)
    assert not task.done()
    assert queue.get_nowait() == 1
    await asyncio.wait_for(task, 1)
    assert queue.get_nowait() == 2


async def test_a_failing_future_is_seen_by_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    seen: list[str] = []

    async def waits() -> str:
        try:
            await fut
        except KeyError:
            seen.append("caught")
            return "handled"
        return "not reached"

    started = start_eagerly(waits())
    assert started.pending is not None
    task = asyncio.ensure_future(started.pending)
    await asyncio.sleep(0)
    fut.set_exception(KeyError("x"))
    assert await asyncio.wait_for(task, 1) == "handled"
    assert seen == ["caught"]


async def test_cancelling_the_driver_cancels_the_coroutine_where_it_waits() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    cleaned: list[str] = []

    async def waits() -> None:
        try:
            await fut
        finally:
            cleaned.append("finally")

    started = start_eagerly(waits())
    assert started.pending is not None
    task = asyncio.ensure_future(started.pending)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally"]
    assert fut.cancelled()


async def test_a_cancel_that_arrives_after_the_future_resolved_is_not_lost() -> None:
    # Under a task, a cancel requested after the awaited future resolved but before the
    # coroutine resumed is thrown in at its await; the driver must not swallow it.
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    after: list[str] = []

    async def waits() -> None:
        await fut
        after.append("resumed normally")

    started = start_eagerly(waits())
    assert started.pending is not None
    task = asyncio.ensure_future(started.pending)
    await asyncio.sleep(0)
    fut.set_result(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == []
