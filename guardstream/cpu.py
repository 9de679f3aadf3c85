"""Worker threads for CPU-bound calls, with one hand-off for many calls.

Why not `loop.run_in_executor` per call: each call pays a thread hand-off (a work item, a
queue put, a thread wake-up) and a wake-up of the event loop for its result (a write to
the loop's self-pipe, an epoll round): ~100 us of CPU per call here one at a time, ~30 us
when many overlap, for calls that often take less (validating a short prompt, counting
its tokens). A busy stage has up to `GUARDSTREAM_CONCURRENCY` requests in flight: here the
calls queue, each worker thread runs what is queued back to back, and the results of a
run go back to the event loop together. A call made while the threads are idle starts at
once; results are handed back at least every `DELIVER_EVERY_SECONDS`, so a quick call
queued behind a long one does not wait for the whole queue.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["DELIVER_EVERY_SECONDS", "CpuPool"]

T = TypeVar("T")
DELIVER_EVERY_SECONDS = 0.002

_Call = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]
_Done = tuple["asyncio.Future[Any]", bool, Any]


class CpuPool:
    """`await pool.run(fn, *args)` == `fn(*args)` on one of `threads` worker threads."""

    def __init__(self, threads: int, *, name: str = "guardstream-cpu") -> None:
        self.threads = max(1, threads)
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=name)
        self._pending: deque[_Call] = deque()
        self._lock = threading.Lock()
        self._draining = 0  # worker threads running (or about to run) `_drain`
        self._closed = False
        self.handoffs = 0  # drains started so far (tests, metrics)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the CPU pool is closed")
            self._pending.append((fn, args, future))
            start = self._draining < self.threads
            if start:
                self._draining += 1
                self.handoffs += 1
        if start:
            self._executor.submit(self._drain)
        return await future

    def _drain(self) -> None:
        """On a worker thread: run queued calls until none is left."""
        done: list[_Done] = []
        since = time.perf_counter()
        while True:
            with self._lock:
                if not self._pending:
                    self._draining -= 1
                    break
                fn, args, future = self._pending.popleft()
            if future.cancelled():  # its caller went away while it waited
                continue
            try:
                done.append((future, True, fn(*args)))
            except BaseException as exc:
                done.append((future, False, exc))
            if time.perf_counter() - since >= DELIVER_EVERY_SECONDS:
                _hand_back(done)
                done = []
                since = time.perf_counter()
        _hand_back(done)

    def close(self) -> None:
        """Stop taking calls; calls still queued are cancelled."""
        with self._lock:
            self._closed = True
            left = list(self._pending)
            self._pending.clear()
        for _, _, future in left:
            future.get_loop().call_soon_threadsafe(future.cancel)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _hand_back(done: list[_Done]) -> None:
    """One event-loop wake-up per loop for a run's results (normally there is one loop)."""
    if not done:
        return
    loop = done[0][0].get_loop()
    if any(item[0].get_loop() is not loop for item in done):
        by_loop: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
        for item in done:
            by_loop.setdefault(item[0].get_loop(), []).append(item)
        for each, items in by_loop.items():
            _call_soon(each, items)
        return
    _call_soon(loop, done)


def _call_soon(loop: asyncio.AbstractEventLoop, items: list[_Done]) -> None:
    try:
        loop.call_soon_threadsafe(_settle, items)
    except RuntimeError:  # that loop is closed: nobody is waiting any more
        pass


def _settle(items: list[_Done]) -> None:
    for future, ok, value in items:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
