"""A redelivered request must not pay for a second model call.

Kafka delivers at least once: a worker that dies after calling the model but before
committing its offset hands the message to another worker. Before calling, the stage
claims `<prefix>:{llm}:idem:<request_id>` with `SET NX` (a *pending* marker whose TTL is
the longest one call can take, so a crashed owner does not block the request for long);
after the call it replaces the marker with the answer (output, usage, canary) for
`ttl_seconds`. A redelivery finds the answer and reuses it; if the first call is still in
flight it polls until the answer appears or the marker expires (then it calls itself).
A failed call deletes its marker: nothing was paid, so a redelivery may try again.

The record carries a fingerprint of who asked what (user, model, parameters, messages):
a *different* request that reuses a request id never receives another request's answer.
The stored answer is the model output before output filtering; it stays in Redis for the
TTL (`stages.llm.idempotency_ttl_seconds`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

from guardstream.redis_scripts import RELEASE_IF_OWNER, read_marker

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Claim", "ClaimState", "IdempotencyStore", "StoredAnswer", "fingerprint"]

log = logging.getLogger("guardstream.llm.idempotency")



@dataclass(frozen=True, slots=True)
class StoredAnswer:
    output: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    model: str
    canary: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": self.cost_usd,
                "model": self.model, "canary": self.canary}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredAnswer:
        return cls(str(data.get("output") or ""), int(data.get("input_tokens") or 0),
                   int(data.get("output_tokens") or 0), float(data.get("cost_usd") or 0.0),
                   str(data.get("model") or ""), data.get("canary"))


class ClaimState(StrEnum):
    OWNER = "owner"          # we hold the marker: call, then `complete` or `release`
    DONE = "done"            # an earlier delivery answered: reuse `answer`
    UNGUARDED = "unguarded"  # could not claim (id reused while in flight): call unprotected


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    token: str | None = None
    answer: StoredAnswer | None = None


def fingerprint(parts: Any) -> str:
    """A stable digest of the request as it reaches the model (canary excluded)."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


class IdempotencyStore:
    def __init__(self, redis: Redis, *, prefix: str = "guardstream", ttl_seconds: int = 86_400,
                 pending_seconds: float = 150.0, poll_seconds: float = 0.1) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.pending_seconds = max(1.0, pending_seconds)
        self.poll_seconds = poll_seconds
        self._release = redis.register_script(RELEASE_IF_OWNER)

    def key(self, request_id: str) -> str:
        # `{llm}` is a Redis Cluster hash tag: these keys live on one slot, like the
        # limiter's keys do under their own tag.
        return f"{self.prefix}:{{llm}}:idem:{request_id}"

    async def claim(self, request_id: str, digest: str) -> Claim:
        """Claim the call for this request, or find the answer of an earlier delivery.

        Waits (polling) while another delivery of the same request is in flight, at most
        until its marker would have expired. Redis errors propagate: the caller decides.
        """
        key = self.key(request_id)
        deadline = time.monotonic() + self.pending_seconds + 1.0
        while True:
            token = uuid.uuid4().hex
            marker = orjson.dumps({"state": "pending", "owner": token, "fp": digest})
            if await self.redis.set(key, marker, nx=True, px=int(self.pending_seconds * 1000)):
                return Claim(ClaimState.OWNER, token=token)
            raw = await self.redis.get(key)
            if raw is None:
                continue  # expired or released between SET and GET: try to claim again
            record = read_marker(raw)
            if record.get("fp") != digest:
                if record.get("state") == "done":
                    # Same id, different request: not a redelivery. Take the key over.
                    log.warning("request id reused for a different request; not reusing "
                                "the stored answer")
                    await self.redis.set(key, marker, px=int(self.pending_seconds * 1000))
                    return Claim(ClaimState.OWNER, token=token)
                return Claim(ClaimState.UNGUARDED)
            if record.get("state") == "done":
                return Claim(ClaimState.DONE, answer=StoredAnswer.from_dict(record))
            if time.monotonic() >= deadline:
                return Claim(ClaimState.UNGUARDED)
            await asyncio.sleep(self.poll_seconds)

    async def complete(self, request_id: str, digest: str, answer: StoredAnswer) -> None:
        record = {"state": "done", "fp": digest, **answer.to_dict()}
        await self.redis.set(self.key(request_id), orjson.dumps(record), ex=self.ttl_seconds)

    async def release(self, request_id: str, token: str) -> None:
        await self._release(keys=[self.key(request_id)], args=[token])
