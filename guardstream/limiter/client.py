"""The limiter client: one atomic script call per decision, pipelined across requests.

A worker handles many requests at once. Sending each decision on its own costs a network
round trip each; instead, decisions that arrive while a pipeline is in flight are queued
and sent together in the next one (`EVALSHA` x N, no MULTI: each script call is atomic on
its own). Throughput then grows with concurrency instead of being capped by latency.

The script is loaded once (`SCRIPT LOAD`) and called by its SHA; a Redis that forgot it
(restart, failover, `SCRIPT FLUSH`) answers NOSCRIPT and the call is retried after loading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, RedisError

from guardstream.autopipeline import fresh_error
from guardstream.limiter.quota import quota_for
from guardstream.limiter.script import (
    CODE_BUDGET,
    CODE_OK,
    CODE_REQUESTS,
    CODE_TOKENS,
    CODE_TOO_BIG,
    SCRIPT,
    SCRIPT_SHA,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from guardstream.policy import Policy

__all__ = ["LimitDecision", "Limiter", "charge_usage", "to_nano_usd"]

log = logging.getLogger("guardstream.limiter")

LIMIT_NAMES = {CODE_REQUESTS: "requests", CODE_TOKENS: "tokens", CODE_BUDGET: "budget",
               CODE_TOO_BIG: "tokens"}


def to_nano_usd(usd: float | None) -> int:
    """USD as integer nano-dollars (Redis counts integers exactly; 1e-9 USD is below any
    real request's cost). None, negative and NaN are 0."""
    if usd is None or not math.isfinite(usd) or usd <= 0:
        return 0
    return round(usd * 1_000_000_000)


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """What the script said: admitted, or which limit refused and for how long."""

    code: int
    retry_after_us: int
    requests: int  # in the window after this decision
    tokens: int

    @property
    def allowed(self) -> bool:
        return self.code == CODE_OK

    @property
    def limit(self) -> str | None:
        return LIMIT_NAMES.get(self.code)

    @property
    def retry_after_seconds(self) -> float | None:
        """Seconds until the request would fit, rounded up to the millisecond (> 0)."""
        if self.allowed:
            return None
        return max(0.001, math.ceil(self.retry_after_us / 1000) / 1000)


_Call = tuple[Sequence[str], Sequence[str | int], "asyncio.Future[Any]"]


class Limiter:
    """Decisions and usage charges against one Redis, batched into pipelines.

    `clock` (microseconds) exists for tests that drive time; production leaves it None and
    the script reads Redis `TIME`, one clock for every worker.
    """

    def __init__(self, redis: Redis, *, window_seconds: int, max_batch: int = 256,
                 timeout: float = 0.5, clock: Callable[[], int] | None = None) -> None:
        self.redis = redis
        self.window_us = window_seconds * 1_000_000
        self.max_batch = max_batch
        self.timeout = timeout
        self.clock = clock
        self._queue: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None

    def _now(self) -> str:
        return "" if self.clock is None else str(int(self.clock()))

    async def decide(self, keys: Sequence[str], *, max_requests: int, max_tokens: int,
                     cost_tokens: int, budget_usd: float | None = None) -> LimitDecision:
        """One atomic decision over requests, tokens and the daily budget; records the
        request when it is admitted. Raises RedisError/OSError/TimeoutError."""
        args = ("decide", self.window_us, self._now(), max_requests, max_tokens,
                max(0, cost_tokens), to_nano_usd(budget_usd))
        reply = await self._call(keys, args)
        code, retry, requests, tokens = (int(x) for x in reply)
        return LimitDecision(code, retry, requests, tokens)

    async def charge(self, keys: Sequence[str], *, tokens: int,
                     cost_usd: float) -> tuple[int, int]:
        """Add usage after the fact -> (tokens in window, spend today in nano-USD)."""
        args = ("charge", self.window_us, self._now(), max(0, tokens), to_nano_usd(cost_usd))
        reply = await self._call(keys, args)
        return int(reply[0]), int(reply[1])

    async def load(self) -> None:
        """Load the script now (optional: a NOSCRIPT reply loads it on demand)."""
        await self.redis.script_load(SCRIPT)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
            self._flusher = None
        for _, _, future in self._queue:
            if not future.done():
                future.set_exception(RedisError("limiter closed"))
        self._queue.clear()

    async def _call(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Send what is queued, one pipeline at a time, until the queue is empty."""
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            batch = [call for call in batch if not call[2].done()]  # timed out meanwhile
            if not batch:
                continue
            try:
                async with asyncio.timeout(self.timeout):
                    replies = await self._execute(batch)
            except (RedisError, OSError, TimeoutError) as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(fresh_error(exc))
                continue
            for (_, _, future), reply in zip(batch, replies, strict=True):
                if future.done():
                    continue
                if isinstance(reply, BaseException):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        replies = await self._pipeline(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.redis.script_load(SCRIPT)
            retried = await self._pipeline([batch[i] for i in missing])
            for i, reply in zip(missing, retried, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies


async def _evalsha(redis: Redis, keys: Sequence[str], args: Sequence[str | int]) -> Any:
    try:
        return await redis.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        await redis.script_load(SCRIPT)
        return await redis.evalsha(SCRIPT_SHA, len(keys), *keys, *args)


async def charge_usage(redis: Redis, *, user_id: str, tokens: int, cost_usd: float,
                       policy: Policy, tier: str | None, client_ip: str | None = None) -> None:
    """Charge what a request really used, after the model answered (the llm stage calls it).

    `tokens` are the tokens used *beyond* what the ratelimit stage already counted for the
    request (`usage.input_tokens + usage.output_tokens - envelope.input_tokens`, or just the
    output tokens); they enter the user's token window now. `cost_usd` is the request's
    whole cost and is added to the user's spend today (the daily budget). One atomic script
    call; negative or zero values charge nothing. Never raises for Redis trouble (it is
    logged by error type only): the answer is already produced and must still be delivered.
    """
    section = policy.stages.ratelimit
    if not section.enabled or not section.charge_actual_usage:
        return
    try:
        extra = max(0, int(tokens))
    except (TypeError, ValueError, OverflowError):
        extra = 0
    nano = to_nano_usd(cost_usd) if isinstance(cost_usd, int | float) else 0
    if extra == 0 and nano == 0:
        return
    quota = quota_for(policy, user_id=user_id, tier=tier, client_ip=client_ip)
    keys = quota.identity.keys(section.key_prefix)
    args = ("charge", section.window_seconds * 1_000_000, "", extra, nano)
    try:
        async with asyncio.timeout(section.redis_timeout_seconds):
            await _evalsha(redis, keys, args)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("usage charge not recorded: %s", type(exc).__name__)
