"""Outages with the configured policies: the provider down, Redis down. No request is lost;
each one ends in exactly one `error` result with a stable reason.

Only the stages under test run (their own worker processes on the embedded broker), fed
on their input topic, so the tests start in seconds.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import tests.integration.test_delivery as delivery
from guardstream.devmodel import DevModelServer
from guardstream.embedded.broker import EmbeddedBroker
from guardstream.embedded.ports import free_port
from tests.support import produce

pytestmark = pytest.mark.integration

BREAKER_FAILURES = 5


@pytest.fixture
def failing_dev() -> Iterator[DevModelServer]:
    with DevModelServer() as server:
        server.behaviour.fail_status = 503
        server.behaviour.fail_times = -1  # forever
        yield server


def _envelopes(ids: list[str]) -> list[tuple[bytes, bytes]]:
    return [(i.encode(), orjson.dumps({
        "request": {"request_id": i, "user_id": f"u-{i}",
                    "messages": [{"role": "user", "content": "What is a topic?"}]},
        "received_ms": time.time() * 1000})) for i in ids]


async def test_provider_down_every_request_gets_an_error_result(
        broker: EmbeddedBroker, redis_url: str, failing_dev: DevModelServer,
        tmp_path: Path) -> None:
    pipeline = delivery.Pipeline(
        broker=broker.url, redis_url=redis_url, openai_base_url=failing_dev.base_url,
        policy=delivery.write_policy(tmp_path / "policy.yaml",
                                     breaker_failures=BREAKER_FAILURES),
        log_dir=tmp_path, stages=("llm",))
    ids = [f"down-{uuid.uuid4().hex[:6]}-{n}" for n in range(40)]
    try:
        await pipeline.start()
        async with delivery.Collector(pipeline.bootstrap, pipeline.topic("results")) as results:
            await produce(pipeline.bootstrap, pipeline.topic("stage.llm"), _envelopes(ids))
            await results.wait_for(set(ids), timeout=60)
            raw = results.counts()
            outcomes = [orjson.loads(v) for _, _, v in results.records]
    finally:
        pipeline.stop()
    reasons = Counter(o["reason"] for o in outcomes)
    calls = failing_dev.behaviour.total_calls
    print(f"\n[provider down] n={len(ids)} reasons={dict(reasons)} model calls={calls}")
    assert sorted(raw) == sorted(ids)
    assert all(raw[i] == 1 for i in ids)
    assert {o["status"] for o in outcomes} == {"error"}
    assert set(reasons) <= {"upstream_error", "upstream_unavailable"}
    assert reasons["upstream_unavailable"] > 0  # the breaker opened: calls stopped
    assert calls < 2 * len(ids)  # 2 attempts per request without the breaker


async def test_redis_down_the_ratelimit_policy_decides_and_nothing_is_lost(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Redis unreachable: the limiter fails closed (the packaged policy), the emitted guard
    fails open; every request ends in one `limiter_unavailable` error."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    pipeline = delivery.Pipeline(
        broker=broker.url, redis_url=dead_redis, openai_base_url="http://127.0.0.1:9/v1",
        policy=delivery.write_policy(tmp_path / "policy.yaml"), log_dir=tmp_path,
        stages=("ratelimit",))
    requests = delivery.new_requests(30, "noredis")
    ids = [r["request_id"] for r in requests]
    started = time.monotonic()
    try:
        await pipeline.start()
        async with delivery.Collector(pipeline.bootstrap, pipeline.topic("results")) as results:
            await produce(pipeline.bootstrap, pipeline.topic("requests"),
                          [(r["request_id"].encode(), orjson.dumps(r)) for r in requests])
            await results.wait_for(set(ids), timeout=60)
            raw = results.counts()
            outcomes = [orjson.loads(v) for _, _, v in results.records]
    finally:
        pipeline.stop()
    print(f"\n[redis down] n={len(ids)} in {time.monotonic() - started:.1f}s "
          f"reasons={Counter(o['reason'] for o in outcomes)}")
    assert sorted(raw) == sorted(ids)
    assert {(o["status"], o["reason"]) for o in outcomes} == {("error", "limiter_unavailable")}
