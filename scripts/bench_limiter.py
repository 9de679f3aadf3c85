"""Benchmark: ratelimit stage decisions per second against a local Redis, on one core.

Runs `RateLimitStage.process` (token counting + one atomic script call per request) on many
concurrent requests in one event loop; the limiter batches the concurrent calls into Redis
pipelines. The process is pinned to one CPU core. Prints one markdown table row.

    REDIS_URL=redis://127.0.0.1:6379/0 python scripts/bench_limiter.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

from guardstream.agents.ratelimit import RateLimitStage
from guardstream.models import Envelope
from guardstream.models.request import ChatRequest
from guardstream.resources import Resources
from guardstream.settings import Settings


def _envelopes(count: int, users: int) -> list[Envelope]:
    run = uuid.uuid4().hex[:8]
    return [Envelope(request=ChatRequest.from_dict({
        "request_id": f"b{i}", "user_id": f"bench-{run}-{i % users}", "tier": "enterprise",
        "messages": [{"role": "system", "content": "You are a helpful support assistant."},
                     {"role": "user", "content": f"Where is my order number {i}? Thanks!"}],
    }), received_ms=0.0) for i in range(count)]


async def _bench(requests: int, concurrency: int, users: int) -> tuple[float, list[float], int]:
    settings = Settings.from_env()
    if settings.redis_url is None:
        import dataclasses

        settings = dataclasses.replace(settings, redis_url="redis://127.0.0.1:6379/0")
    resources = Resources(settings)
    stage = RateLimitStage(resources)
    await stage.start()
    try:
        for env in _envelopes(500, users):  # warm up: connections, script cache
            await stage.process(env)
        envelopes = _envelopes(requests, users)
        latencies: list[float] = []
        passed = 0
        queue = iter(envelopes)

        async def worker() -> None:
            nonlocal passed
            for env in queue:
                start = time.perf_counter()
                verdict = await stage.process(env)
                latencies.append(time.perf_counter() - start)
                passed += verdict.decision.value == "pass"

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
        return requests / elapsed, latencies, passed
    finally:
        await stage.close()
        await resources.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    os.environ.setdefault("GUARDSTREAM_CPU_THREADS", "1")
    rate, latencies, passed = asyncio.run(_bench(args.requests, args.concurrency, args.users))
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print("| benchmark | decisions/s | p50 ms | p99 ms | notes |")
    print("|---|---|---|---|---|")
    print(f"| ratelimit stage, local Redis, 1 core | {rate:,.0f} | {p50:.2f} | {p99:.2f} | "
          f"{args.requests} requests, concurrency {args.concurrency}, {args.users} users, "
          f"{passed} admitted; tiktoken count + 1 EVALSHA each, pipelined |")


if __name__ == "__main__":
    main()
