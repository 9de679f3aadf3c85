"""The idempotency record in real Redis: claim, reuse, wait for an in-flight call, release,
and never hand one request's answer to another that reuses its id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from guardstream.llm.idempotency import ClaimState, IdempotencyStore, StoredAnswer, fingerprint

ANSWER = StoredAnswer(output="forty-two", input_tokens=10, output_tokens=2, cost_usd=1e-6,
                      model="gpt-4o-mini", canary="gs-ref-abc")


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[IdempotencyStore]:
    redis = Redis.from_url(redis_url)
    yield IdempotencyStore(redis, prefix=f"gst{uuid.uuid4().hex[:8]}", ttl_seconds=60,
                           pending_seconds=2.0, poll_seconds=0.02)
    await redis.aclose()


def rid() -> str:
    return f"r-{uuid.uuid4().hex[:8]}"


async def test_first_delivery_owns_then_redelivery_reuses(store: IdempotencyStore) -> None:
    request_id, digest = rid(), fingerprint(["alice", "hi"])
    first = await store.claim(request_id, digest)
    assert first.state is ClaimState.OWNER
    await store.complete(request_id, digest, ANSWER)
    again = await store.claim(request_id, digest)
    assert again.state is ClaimState.DONE and again.answer == ANSWER
    ttl = await store.redis.ttl(store.key(request_id))
    assert 0 < ttl <= 60
    assert store.key(request_id).endswith(f":{{llm}}:idem:{request_id}")


async def test_redelivery_waits_for_the_in_flight_call(store: IdempotencyStore) -> None:
    request_id, digest = rid(), fingerprint(["alice", "hi"])
    assert (await store.claim(request_id, digest)).state is ClaimState.OWNER
    waiter = asyncio.create_task(store.claim(request_id, digest))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await store.complete(request_id, digest, ANSWER)
    claim = await asyncio.wait_for(waiter, 2)
    assert claim.state is ClaimState.DONE and claim.answer == ANSWER


async def test_released_claim_can_be_taken_again(store: IdempotencyStore) -> None:
    request_id, digest = rid(), fingerprint(["alice", "hi"])
    first = await store.claim(request_id, digest)
    waiter = asyncio.create_task(store.claim(request_id, digest))
    await asyncio.sleep(0.1)
    assert first.token is not None
    await store.release(request_id, "not-the-owner")  # a stranger cannot release it
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await store.release(request_id, first.token)
    second = await asyncio.wait_for(waiter, 2)
    assert second.state is ClaimState.OWNER and second.token != first.token


async def test_a_crashed_owner_blocks_only_until_the_marker_expires(
        store: IdempotencyStore) -> None:
    request_id, digest = rid(), fingerprint(["alice", "hi"])
    await store.claim(request_id, digest)  # the owner "crashes": never completes
    claim = await asyncio.wait_for(store.claim(request_id, digest), 5)
    assert claim.state is ClaimState.OWNER


async def test_a_reused_request_id_never_gets_another_requests_answer(
        store: IdempotencyStore) -> None:
    request_id = rid()
    alice, bob = fingerprint(["alice", "hi"]), fingerprint(["bob", "hi"])
    await store.claim(request_id, alice)
    assert (await store.claim(request_id, bob)).state is ClaimState.UNGUARDED  # in flight
    await store.complete(request_id, alice, ANSWER)
    claim = await store.claim(request_id, bob)
    assert claim.state is ClaimState.OWNER and claim.answer is None
