"""The limiter script against a real Redis: table-driven cases and a property test against
a reference model of the sliding window, both on a controlled clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from guardstream.limiter import SCRIPT_SHA, Identity, Limiter

SECOND = 1_000_000
DAY = 86_400 * SECOND
T0 = 1_800_000_000 * SECOND  # a fixed instant: the tests drive the clock


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def fresh_keys() -> tuple[str, str, str]:
    return Identity("u", f"test-{uuid.uuid4().hex}").keys("gs:test")


# (limits, costs of successive requests at T0, expected codes, expected retry of the last, s)
CASES = [
    ("requests", (3, 1000), [10, 10, 10, 10], [0, 0, 0, 1], 60),
    ("tokens", (100, 100), [60, 40, 1], [0, 0, 2], 60),
    ("exact tokens fit", (100, 100), [50, 50], [0, 0], None),
    ("never fits", (100, 100), [101], [4], 60),
    ("both over: longest wait", (1, 10), [10, 10], [0, 1], 60),
]


@pytest.mark.parametrize(("name", "limits", "costs", "codes", "retry"), CASES,
                         ids=[c[0] for c in CASES])
async def test_decisions(redis: Redis, name: str, limits: tuple[int, int], costs: list[int],
                         codes: list[int], retry: int | None) -> None:
    limiter = Limiter(redis, window_seconds=60, clock=Clock())
    keys = fresh_keys()
    got = [await limiter.decide(keys, max_requests=limits[0], max_tokens=limits[1],
                                cost_tokens=c) for c in costs]
    assert [d.code for d in got] == codes
    if retry is None:
        assert got[-1].retry_after_seconds is None
    else:
        assert got[-1].retry_after_seconds == retry


async def test_retry_after_is_exact(redis: Redis) -> None:
    clock = Clock()
    limiter = Limiter(redis, window_seconds=60, clock=clock)
    keys = fresh_keys()
    for offset in (0, 7 * SECOND):
        clock.now = T0 + offset
        assert (await limiter.decide(keys, max_requests=2, max_tokens=1000, cost_tokens=1)).allowed
    clock.now = T0 + 30 * SECOND
    refused = await limiter.decide(keys, max_requests=2, max_tokens=1000, cost_tokens=1)
    assert refused.code == 1 and refused.retry_after_us == 30 * SECOND
    clock.now = T0 + 60 * SECOND - 1
    assert not (await limiter.decide(keys, max_requests=2, max_tokens=1000,
                                     cost_tokens=1)).allowed
    clock.now = T0 + 60 * SECOND
    assert (await limiter.decide(keys, max_requests=2, max_tokens=1000, cost_tokens=1)).allowed


@pytest.mark.parametrize("refusal_cost", [13, 40])  # over the limit now / never fits
async def test_a_refusal_that_prunes_keeps_the_sums_in_step_with_the_log(
        redis: Redis, refusal_cost: int) -> None:
    # Found by test_matches_reference_model: a refused decision pruned entries from the log
    # without storing the reduced sums, so the pruned tokens were counted again ever after.
    clock = Clock()
    limiter = Limiter(redis, window_seconds=60, clock=clock)
    keys = fresh_keys()
    assert await limiter.charge(keys, tokens=7, cost_usd=0.0) == (7, 0)
    clock.now += 31 * SECOND
    assert await limiter.charge(keys, tokens=24, cost_usd=0.0) == (31, 0)
    clock.now += 40 * SECOND  # the first charge has left the window
    refused = await limiter.decide(keys, max_requests=6, max_tokens=29,
                                   cost_tokens=refusal_cost)
    assert not refused.allowed
    assert refused.tokens == 24
    clock.now += SECOND
    assert await limiter.charge(keys, tokens=14, cost_usd=0.0) == (38, 0)
    admitted = await limiter.decide(keys, max_requests=6, max_tokens=100, cost_tokens=2)
    assert (admitted.allowed, admitted.requests, admitted.tokens) == (True, 1, 40)


async def test_keys_expire_on_their_own(redis: Redis) -> None:
    limiter = Limiter(redis, window_seconds=5)  # Redis TIME, as in production
    keys = fresh_keys()
    await limiter.decide(keys, max_requests=5, max_tokens=100, cost_tokens=3)
    await limiter.charge(keys, tokens=2, cost_usd=0.01)
    for key in keys[:2]:
        assert 0 < await redis.pttl(key) <= 6_000
    assert 0 < await redis.pttl(keys[2]) <= DAY // 1000 + 3_600_000


async def test_charge_counts_tokens_and_budget(redis: Redis) -> None:
    clock = Clock(T0 + 3_600 * SECOND)
    limiter = Limiter(redis, window_seconds=60, clock=clock)
    keys = fresh_keys()
    assert (await limiter.decide(keys, max_requests=10, max_tokens=100, cost_tokens=40,
                                 budget_usd=0.02)).allowed
    assert await limiter.charge(keys, tokens=50, cost_usd=0.015) == (90, 15_000_000)
    refused = await limiter.decide(keys, max_requests=10, max_tokens=100, cost_tokens=20,
                                   budget_usd=0.02)
    assert refused.code == 2  # 90 + 20 > 100 tokens
    await limiter.charge(keys, tokens=0, cost_usd=0.005)
    over = await limiter.decide(keys, max_requests=10, max_tokens=100, cost_tokens=1,
                                budget_usd=0.02)
    day_end = (clock.now // DAY + 1) * DAY
    assert over.code == 3 and over.retry_after_us == day_end - clock.now
    clock.now = day_end  # a new UTC day: the budget is fresh, the window has moved on too
    assert (await limiter.decide(keys, max_requests=10, max_tokens=100, cost_tokens=1,
                                 budget_usd=0.02)).allowed


async def test_script_reloaded_after_flush(redis: Redis) -> None:
    limiter = Limiter(redis, window_seconds=60, clock=Clock())
    await redis.script_flush()
    assert (await redis.script_exists(SCRIPT_SHA)) == [False]
    decision = await limiter.decide(fresh_keys(), max_requests=1, max_tokens=10, cost_tokens=1)
    assert decision.allowed


async def test_concurrent_decisions_admit_exactly_the_limit(redis: Redis) -> None:
    limiter = Limiter(redis, window_seconds=60, max_batch=7)  # several pipelines
    keys = fresh_keys()
    decisions = await asyncio.gather(*[
        limiter.decide(keys, max_requests=13, max_tokens=10_000, cost_tokens=5)
        for _ in range(60)])
    assert sum(d.allowed for d in decisions) == 13
    assert all(d.retry_after_seconds and d.retry_after_seconds > 0
               for d in decisions if not d.allowed)


# --- property test against a reference model --------------------------------------------


@dataclass
class Reference:
    """The sliding window written the obvious (slow) way."""

    window: int
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (time, req, tokens)
    spend: dict[int, int] = field(default_factory=dict)

    def _live(self, now: int) -> list[tuple[int, int, int]]:
        self.entries = [e for e in self.entries if e[0] > now - self.window]
        return self.entries

    def _wait(self, now: int, fits: object) -> int:
        """Earliest delay after which `fits(remaining entries)` holds."""
        live = sorted(self._live(now))
        if fits(live):  # type: ignore[operator]
            return 0
        for i, (t, _, _) in enumerate(live):
            if fits(live[i + 1:]):  # type: ignore[operator]
                return t + self.window - now
        return self.window

    def decide(self, now: int, max_req: int, max_tok: int, cost: int,
               budget: int) -> tuple[int, int, int, int]:
        day = now // DAY
        if budget and self.spend.get(day, 0) >= budget:
            return 3, (day + 1) * DAY - now, 0, 0
        live = self._live(now)
        req, tok = sum(e[1] for e in live), sum(e[2] for e in live)
        if cost > max_tok:
            return 4, self.window, req, tok
        wait_req = self._wait(now, lambda es: sum(e[1] for e in es) + 1 <= max_req)
        wait_tok = self._wait(now, lambda es: sum(e[2] for e in es) + cost <= max_tok)
        if wait_req or wait_tok:
            return (2 if wait_tok > wait_req else 1), max(wait_req, wait_tok), req, tok
        self.entries.append((now, 1, cost))
        return 0, 0, req + 1, tok + cost

    def charge(self, now: int, tokens: int, nano: int) -> tuple[int, int]:
        tok_after = 0
        if tokens > 0:
            tok_after = sum(e[2] for e in self._live(now)) + tokens
            self.entries.append((now, 0, tokens))
        spend_after = 0
        if nano > 0:
            day = now // DAY
            self.spend[day] = spend_after = self.spend.get(day, 0) + nano
        return tok_after, spend_after


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("decide"), st.integers(0, 45 * SECOND), st.integers(0, 60)),
        st.tuples(st.just("charge"), st.integers(0, 45 * SECOND), st.integers(0, 40),
                  st.sampled_from([0, 3_000, 7_000])),
    ),
    min_size=1, max_size=40,
)


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, max_req=st.integers(1, 6), max_tok=st.integers(1, 120),
       budget=st.sampled_from([0, 10_000]), start=st.integers(0, DAY - 1))
def test_matches_reference_model(redis_url: str, ops: list[tuple[object, ...]], max_req: int,
                                 max_tok: int, budget: int, start: int) -> None:
    async def run() -> None:
        client = Redis.from_url(redis_url)
        clock = Clock(T0 - T0 % DAY + start)
        limiter = Limiter(client, window_seconds=60, clock=clock)
        model = Reference(window=60 * SECOND)
        keys = fresh_keys()
        try:
            for op in ops:
                clock.now += int(op[1])  # type: ignore[call-overload]
                if op[0] == "decide":
                    cost = int(op[2])  # type: ignore[call-overload]
                    got = await limiter.decide(keys, max_requests=max_req, max_tokens=max_tok,
                                               cost_tokens=cost, budget_usd=budget / 1e9)
                    want = model.decide(clock.now, max_req, max_tok, cost, budget)
                    assert (got.code, got.retry_after_us, got.requests, got.tokens) == want
                else:
                    tokens, nano = int(op[2]), int(op[3])  # type: ignore[call-overload]
                    charged = await limiter.charge(keys, tokens=tokens, cost_usd=nano / 1e9)
                    assert charged == model.charge(clock.now, tokens, nano)
        finally:
            await client.delete(*keys)
            await client.aclose()

    asyncio.run(run())
