"""Start a coroutine now, in the caller's task, and only make a task of it if it waits.

Python 3.12's `asyncio.eager_task_factory` does this for every task; on 3.11 Faust's
consumer makes four tasks and an `asyncio.wait` per record to hand it to the agent's
stream (`guardstream.faust_tuning`), although the hand-off almost never has to wait.
`start_eagerly` runs the coroutine's first step synchronously: if it finishes there, no
task and no event-loop round trip are needed; if it suspends, `resume` finishes it from
where it stopped, so the caller can await or race it like the original coroutine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

__all__ = ["Started", "resume", "start_eagerly"]


@dataclass(frozen=True, slots=True)
class Started:
    """The outcome of `start_eagerly`: `done` with `value`, or `pending` (still running)."""

    value: Any = None
    pending: Coroutine[Any, Any, Any] | None = None

    @property
    def done(self) -> bool:
        return self.pending is None


def start_eagerly(coro: Coroutine[Any, Any, Any]) -> Started:
    """Run `coro` up to its first suspension. Exceptions it raises there propagate."""
    try:
        yielded = coro.send(None)
    except StopIteration as finished:
        return Started(finished.value)
    return Started(pending=resume(coro, yielded))


async def resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Drive a coroutine that already ran (and yielded `yielded`) to its end.

    What a coroutine yields is the asyncio future it waits for, or None for a bare
    `sleep(0)`-style yield. Once that future is done the coroutine is resumed and reads
    its outcome itself (result, exception or cancellation), as it would under a task. If
    this driver is cancelled while the future is still pending, the cancellation is
    thrown into the coroutine.
    """
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                # The coroutine's own `await` marked the future as awaited; a task would
                # clear the mark when it takes the future over, and so must we.
                yielded._asyncio_future_blocking = False
                await yielded
        except BaseException as exc:
            if not _outcome_of(yielded, exc):
                # Raised at this driver (it was cancelled), not by the future: the
                # coroutine gets it where it waits, as it would under a task.
                try:
                    yielded = coro.throw(exc)
                except StopIteration as finished:
                    return finished.value
                continue
            # The future failed or was cancelled: the coroutine reads that when resumed.
        try:
            yielded = coro.send(None)
        except StopIteration as finished:
            return finished.value


def _outcome_of(future: Any, exc: BaseException) -> bool:
    """Whether `exc`, raised by awaiting `future`, is the future's own outcome."""
    if future is None or not future.done():
        return False
    if isinstance(exc, asyncio.CancelledError):
        return bool(future.cancelled())
    return True
