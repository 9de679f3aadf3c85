"""AutoPipelineRedis against a real Redis: concurrent commands share round trips, and every
caller still gets exactly its own reply or its own error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from guardstream.autopipeline import AutoPipelineRedis
from guardstream.embedded.ports import free_port


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AutoPipelineRedis]:
    redis = AutoPipelineRedis.from_url(redis_url)
    yield redis
    await redis.aclose()


def _key(name: str) -> str:
    return f"gs-autopipe-{uuid.uuid4().hex[:8]}-{name}"


async def test_concurrent_commands_share_round_trips(client: AutoPipelineRedis) -> None:
    keys = [_key(str(i)) for i in range(64)]

    async def one(i: int, key: str) -> bytes | None:
        assert await client.set(key, f"value-{i}".encode(), px=60_000) is True
        value: bytes | None = await client.get(key)
        return value

    before = client.round_trips
    values = await asyncio.gather(*[one(i, k) for i, k in enumerate(keys)])
    assert values == [f"value-{i}".encode() for i in range(len(keys))]
    trips = client.round_trips - before
    assert trips <= 8, trips  # 128 commands; one by one they would take 128
    await client.delete(*keys)


async def test_a_lone_command_goes_out_alone_and_at_once(client: AutoPipelineRedis) -> None:
    key = _key("lone")
    before = (client.round_trips, client.commands)
    assert await client.set(key, b"x", px=60_000) is True
    assert (client.round_trips, client.commands) == (before[0] + 1, before[1] + 1)
    assert await client.get(key) == b"x"
    await client.delete(key)


async def test_an_error_fails_only_its_own_command(client: AutoPipelineRedis) -> None:
    text, counter = _key("text"), _key("counter")
    await client.set(text, b"not a number", px=60_000)

    async def incr(key: str) -> int:
        value: int = await client.incr(key)
        return value

    outcomes = await asyncio.gather(incr(counter), incr(text), incr(counter), incr(counter),
                                    return_exceptions=True)
    assert sorted(o for o in outcomes if isinstance(o, int)) == [1, 2, 3]
    (error,) = [o for o in outcomes if isinstance(o, BaseException)]
    assert isinstance(error, ResponseError) and "not an integer" in str(error)
    await client.delete(text, counter)


async def test_scripts_reload_after_a_flush_inside_a_shared_round_trip(
    client: AutoPipelineRedis,
) -> None:
    script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    key = _key("script")
    assert await script(keys=[key], args=[1]) == 1
    await client.script_flush()  # the next EVALSHA gets NOSCRIPT; Script loads it again
    results = await asyncio.gather(*[script(keys=[key], args=[1]) for _ in range(20)])
    assert sorted(results) == list(range(2, 22))
    await client.delete(key)


async def test_a_cancelled_caller_does_not_disturb_the_others(client: AutoPipelineRedis) -> None:
    keys = [_key(str(i)) for i in range(10)]
    blocker = asyncio.ensure_future(client.set(_key("first"), b"1", px=60_000))
    await asyncio.sleep(0)  # the first command is in flight; the rest will queue
    tasks = [asyncio.ensure_future(client.set(k, b"v", px=60_000)) for k in keys]
    await asyncio.sleep(0)
    tasks[3].cancel()
    done = await asyncio.gather(blocker, *tasks, return_exceptions=True)
    assert isinstance(done[4], asyncio.CancelledError)
    assert all(d is True for i, d in enumerate(done) if i != 4)
    assert await client.exists(keys[3]) == 0  # a cancelled queued command is never sent
    await client.delete(*keys)


async def test_every_concurrent_caller_gets_the_connection_error() -> None:
    port = free_port()  # nothing listens there
    redis = AutoPipelineRedis.from_url(f"redis://127.0.0.1:{port}/0",
                                       socket_connect_timeout=0.5)
    outcomes = await asyncio.wait_for(
        asyncio.gather(*[redis.get(f"k{i}") for i in range(12)], return_exceptions=True),
        timeout=30)
    await redis.aclose()
    assert len(outcomes) == 12
    assert all(isinstance(o, RedisConnectionError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == len(outcomes)  # one instance per caller


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=8), min_size=1,
                     max_size=12))
async def test_each_caller_sees_its_own_commands_in_order(
    client: AutoPipelineRedis, plan: list[list[int]],
) -> None:
    """Each task adds its steps to its own key and reads the running total back after each
    step: any reordering or crossed reply within a shared round trip breaks the totals."""
    keys = [_key(f"t{i}") for i in range(len(plan))]

    async def run(key: str, steps: list[int]) -> list[int]:
        totals = []
        for step in steps:
            await client.incrby(key, step)
            totals.append(int(await client.get(key) or 0))
        return totals

    seen = await asyncio.gather(*[run(k, s) for k, s in zip(keys, plan, strict=True)])
    for steps, totals in zip(plan, seen, strict=True):
        assert totals == [sum(steps[:i + 1]) for i in range(len(steps))]
    await client.delete(*keys)
