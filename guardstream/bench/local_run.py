"""The same mix through `LocalPipeline` (what `guardstream scan` runs): no broker at all.

Runs in the bench process after a warm-up; the CPU it reports is this process's (the
dev model runs in its own process under `guardstream bench --up`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from guardstream.bench.mix import BenchRequest
from guardstream.settings import Settings

__all__ = ["LocalRun", "run_local"]


@dataclass
class LocalRun:
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.results) / self.seconds if self.seconds else 0.0


async def run_local(settings: Settings, mix: Sequence[BenchRequest],
                    warmup: Sequence[BenchRequest] = (), *, concurrency: int = 16,
                    progress: Callable[[int], None] | None = None) -> LocalRun:
    from guardstream.agents import STAGE_ORDER
    from guardstream.models.codec import encode
    from guardstream.pipeline import LocalPipeline
    from guardstream.resources import Resources

    resources = Resources(settings)
    run = LocalRun()
    try:
        async with LocalPipeline(STAGE_ORDER, resources) as pipeline:
            for request in warmup:
                await pipeline.run_raw(orjson.dumps(request.body))
            semaphore = asyncio.Semaphore(concurrency)

            async def one(request: BenchRequest) -> tuple[float, dict[str, Any]]:
                async with semaphore:
                    t0 = time.perf_counter()
                    result = await pipeline.run_raw(orjson.dumps(request.body))
                    elapsed = (time.perf_counter() - t0) * 1000.0
                if progress is not None:
                    progress(1)
                return elapsed, orjson.loads(encode(result))

            cpu0, t0 = time.process_time(), time.perf_counter()
            done = await asyncio.gather(*(one(r) for r in mix))
            run.seconds = time.perf_counter() - t0
            run.cpu_seconds = time.process_time() - cpu0
            run.latencies_ms = [d[0] for d in done]
            run.results = [d[1] for d in done]
    finally:
        await resources.close()
    return run
