"""`Batcher`: concurrent submissions share one call, each gets its own results back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from guardstream.batching import Batcher


class _Runner:
    """Runs the batched function in a thread, like `Resources.run_cpu`, and records calls."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, fn: Callable[[list[Any]], list[Any]], items: list[Any]) -> Any:
        self.calls.append(list(items))
        await self.gate.wait()
        return await asyncio.to_thread(fn, items)


def _double(items: list[int]) -> list[int]:
    return [2 * i for i in items]


async def test_a_lone_submission_runs_at_once() -> None:
    run = _Runner()
    batcher = Batcher(_double, run)
    assert await batcher.submit([1, 2]) == [2, 4]
    assert run.calls == [[1, 2]]
    assert await batcher.submit([]) == []
    assert batcher.batches == 1


async def test_submissions_made_while_a_batch_runs_go_together_into_the_next() -> None:
    run = _Runner()
    run.gate.clear()
    batcher = Batcher(_double, run)
    first = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0)  # the first batch is now running, held at the gate
    later = [asyncio.ensure_future(batcher.submit([i, i + 100])) for i in range(2, 6)]
    await asyncio.sleep(0)
    run.gate.set()
    assert await first == [2]
    assert [await f for f in later] == [[2 * i, 2 * (i + 100)] for i in range(2, 6)]
    assert run.calls == [[1], [2, 102, 3, 103, 4, 104, 5, 105]]


async def test_batches_hold_at_most_max_items_but_a_large_submission_runs_whole() -> None:
    run = _Runner()
    run.gate.clear()
    batcher = Batcher(_double, run, max_items=3)
    head = asyncio.ensure_future(batcher.submit([0]))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.submit(items))
            for items in ([1, 2], [3], [4, 5, 6, 7], [8])]
    await asyncio.sleep(0)
    run.gate.set()
    await head
    assert [await f for f in rest] == [[2, 4], [6], [8, 10, 12, 14], [16]]
    assert run.calls == [[0], [1, 2, 3], [4, 5, 6, 7], [8]]


async def test_an_error_reaches_only_the_submission_that_fails_alone() -> None:
    def explode_on_13(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("bad input")
        return _double(items)

    run = _Runner()
    run.gate.clear()
    batcher = Batcher(explode_on_13, run, max_items=2)
    head = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0)
    bad = asyncio.ensure_future(batcher.submit([13]))
    neighbour = asyncio.ensure_future(batcher.submit([2]))
    good = asyncio.ensure_future(batcher.submit([3, 4]))
    await asyncio.sleep(0)
    run.gate.set()
    assert await head == [2]
    with pytest.raises(ValueError, match="bad input"):
        await bad
    assert await neighbour == [4]
    assert await good == [6, 8]
    # The failed batch [13, 2] was run again one submission at a time.
    assert run.calls == [[1], [13, 2], [13], [2], [3, 4]]


async def test_an_error_every_input_causes_reaches_every_submission() -> None:
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("model not loaded")

    run = _Runner()
    run.gate.clear()
    batcher = Batcher(broken, run)
    first = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.submit([i])) for i in (2, 3)]
    await asyncio.sleep(0)
    run.gate.set()
    for future in (first, *rest):
        with pytest.raises(RuntimeError, match="model not loaded"):
            await future
    assert batcher.batches == 4  # [1], then [2, 3], then each alone


async def test_a_wrong_number_of_results_is_an_error() -> None:
    batcher = Batcher(lambda items: items[:-1], _Runner())
    with pytest.raises(RuntimeError, match="wrong number"):
        await batcher.submit([1, 2])


async def test_a_cancelled_submission_is_left_out_and_the_others_still_run() -> None:
    run = _Runner()
    run.gate.clear()
    batcher = Batcher(_double, run)
    head = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(batcher.submit([50]))
    kept = asyncio.ensure_future(batcher.submit([7]))
    await asyncio.sleep(0)
    gone.cancel()
    run.gate.set()
    assert (await head, await kept) == ([2], [14])
    assert run.calls == [[1], [7]]


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        Batcher(_double, _Runner(), max_items=0)
