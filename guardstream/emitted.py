"""Which terminal results were already emitted, so a redelivery does not emit a second one.

Kafka delivers at least once: a worker that dies (or is rebalanced away) after producing a
result but before committing its input offset hands that input to the next owner, and a
duplicate envelope from an earlier stage's redelivery reaches the last stage twice. Every
stage that produces a terminal result (`ok` from output, `blocked`/`error` from any stage,
`error` for a dead letter with a usable id) asks this guard first.

Protocol, per `<prefix>:{emitted}:<request_id>` in Redis:
1. `claim`: `SET NX` a *pending* marker (owner token, origin) with a short TTL.
2. produce the result and wait for the broker's ack.
3. `confirm`: replace the marker with a *done* record (origin) for `ttl_seconds`.
A failed produce `release`s the marker (only if still ours).

Why pending-then-done, not one record before or after the produce:
- recording *before* producing (done at once) loses the result when the worker dies
  between the record and the ack: the redelivery finds "done" and emits nothing;
- recording only *after* lets two concurrent copies of one request (two agent slots, or
  two workers during a rebalance) both produce.
The pending marker makes concurrent copies wait for the first; its short TTL means a
crashed owner delays a redelivery by at most `pending_seconds`, never loses it. The one
window left, a crash between the ack and `confirm`, yields a duplicate, never a loss: the
client (`GuardstreamClient`) and the HTTP front door drop a repeated request id.

The *origin* (the ingress record's partition and offset, carried in a Kafka header from
stage to stage) tells a redelivery of one publication from a new publication that reuses
the request id: the latter gets its own result, as the client expects.

Redis trouble fails open (the result is produced unguarded, at worst a duplicate) and
trips a short breaker so an outage costs one socket timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import orjson

from guardstream.redis_scripts import RELEASE_IF_OWNER, read_marker

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["EmitClaim", "EmitState", "EmittedGuard"]

log = logging.getLogger("guardstream.emitted")



class EmitState(StrEnum):
    OWNER = "owner"          # we hold the pending marker: produce, then confirm or release
    DUPLICATE = "duplicate"  # this publication's result was already emitted: produce nothing
    UNGUARDED = "unguarded"  # no guard (Redis down, or still pending too long): produce


@dataclass(frozen=True, slots=True)
class EmitClaim:
    state: EmitState
    token: str | None = None


class EmittedGuard:
    """Records emitted results in Redis; see the module docstring for the protocol.

    `redis=None` disables the guard (every claim is UNGUARDED), e.g. for unit tests that
    exercise only the produce path.
    """

    def __init__(self, redis: Redis | None, *, prefix: str = "guardstream",
                 ttl_seconds: int = 3_600, pending_seconds: float = 10.0,
                 poll_seconds: float = 0.05, breaker_seconds: float = 5.0) -> None:
        if ttl_seconds <= 0 or pending_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("emitted-guard durations must be positive")
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.pending_ms = max(1, int(pending_seconds * 1000))
        self.poll_seconds = poll_seconds
        self.breaker_seconds = breaker_seconds
        self._release = redis.register_script(RELEASE_IF_OWNER) if redis is not None else None
        self._down_until = 0.0
        # Counters for reports and tests (monotonic, bounded: plain ints).
        self.duplicates = 0
        self.unguarded = 0
        self.waits = 0

    def key(self, request_id: str) -> str:
        # `{emitted}` is a Redis Cluster hash tag, like `{llm}` for the idempotency keys.
        return f"{self.prefix}:{{emitted}}:{request_id}"

    async def claim(self, request_id: str, origin: str) -> EmitClaim:
        """Claim the right to emit this publication's result (never raises on Redis errors)."""
        if self.redis is None or time.monotonic() < self._down_until:
            self.unguarded += 1
            return EmitClaim(EmitState.UNGUARDED)
        try:
            return await self._claim(request_id, origin)
        except Exception as exc:  # redis errors: fail open, trip the breaker
            self._trip(exc)
            self.unguarded += 1
            return EmitClaim(EmitState.UNGUARDED)

    async def _claim(self, request_id: str, origin: str) -> EmitClaim:
        assert self.redis is not None  # noqa: S101 - checked by claim()
        key = self.key(request_id)
        deadline = time.monotonic() + self.pending_ms / 1000 + 1.0
        while True:
            token = uuid.uuid4().hex
            marker = orjson.dumps({"s": "pending", "o": origin, "t": token})
            if await self.redis.set(key, marker, nx=True, px=self.pending_ms):
                return EmitClaim(EmitState.OWNER, token)
            raw = await self.redis.get(key)
            if raw is None:
                continue  # expired or released between SET and GET: claim again
            record = read_marker(raw)
            if record.get("o") != origin:
                if record.get("s") == "done":
                    # A new publication reusing the id: it gets its own result.
                    await self.redis.set(key, marker, px=self.pending_ms)
                    return EmitClaim(EmitState.OWNER, token)
                self.unguarded += 1
                return EmitClaim(EmitState.UNGUARDED)
            if record.get("s") == "done":
                self.duplicates += 1
                return EmitClaim(EmitState.DUPLICATE)
            if time.monotonic() >= deadline:
                self.unguarded += 1
                return EmitClaim(EmitState.UNGUARDED)
            self.waits += 1
            await asyncio.sleep(self.poll_seconds)

    async def confirm(self, request_id: str, origin: str, claim: EmitClaim) -> None:
        """Record the result as emitted (after the broker acked it)."""
        if self.redis is None or claim.state is EmitState.DUPLICATE:
            return
        try:
            await self.redis.set(self.key(request_id), orjson.dumps({"s": "done", "o": origin}),
                                 ex=self.ttl_seconds)
        except Exception as exc:
            self._trip(exc)

    async def release(self, request_id: str, claim: EmitClaim) -> None:
        """Give the claim back after a failed produce, so a redelivery can emit at once."""
        if self._release is None or claim.state is not EmitState.OWNER or claim.token is None:
            return
        try:
            await self._release(keys=[self.key(request_id)], args=[claim.token])
        except Exception as exc:
            self._trip(exc)

    def _trip(self, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("emitted-result guard unavailable (%s): producing unguarded for %gs",
                        type(exc).__name__, self.breaker_seconds)
        self._down_until = time.monotonic() + self.breaker_seconds
