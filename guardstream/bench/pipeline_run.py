"""Send the mix to a running pipeline and time every request from send to result.

Open loop: at a fixed offered rate each request goes out at its scheduled time whatever
the pipeline's state (so queueing shows up in the latency), or, with rate 0, all at once
(so the run measures throughput). CPU of the worker processes is read around the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from guardstream.bench.mix import BenchRequest
from guardstream.bench.procs import ProcSample, sample_many

__all__ = ["PipelineRun", "run_pipeline"]


@dataclass
class PipelineRun:
    sent: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    cpu_before: dict[int, ProcSample] = field(default_factory=dict)
    cpu_after: dict[int, ProcSample] = field(default_factory=dict)
    missing: int = 0

    @property
    def throughput(self) -> float:
        return len(self.results) / self.seconds if self.seconds else 0.0

    def cpu_seconds(self) -> dict[int, float]:
        return {pid: self.cpu_after[pid].cpu_seconds - before.cpu_seconds
                for pid, before in self.cpu_before.items() if pid in self.cpu_after}


async def run_pipeline(bootstrap: str, prefix: str, mix: Sequence[BenchRequest], *,
                       rate: float, pids: Sequence[int] = (), wait_s: float = 300.0,
                       progress: Callable[[int], None] | None = None) -> PipelineRun:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from guardstream.settings import fetch_max_wait_ms

    requests_topic, results_topic = f"{prefix}.requests", f"{prefix}.results"
    # Read results the way GuardstreamClient does, or its wait is in every latency.
    consumer = AIOKafkaConsumer(results_topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="latest", enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    run = PipelineRun()
    kind_of = {r.request_id: r.kind for r in mix}
    sent_at: dict[str, float] = {}
    try:
        while not consumer.assignment():  # noqa: ASYNC110 - aiokafka has no assigned event
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.position(tp)  # pin "latest" before the first request goes out
        payloads = [(r.request_id, orjson.dumps(r.body)) for r in mix]
        run.cpu_before = sample_many(list(pids))
        started = time.perf_counter()

        async def send_all() -> None:
            for i, (rid, value) in enumerate(payloads):
                if rate > 0:
                    delay = started + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                sent_at[rid] = time.perf_counter()
                await producer.send(requests_topic, key=rid.encode(), value=value)
                run.sent += 1
            await producer.flush()

        sender = asyncio.create_task(send_all())
        deadline = time.monotonic() + wait_s
        last = started
        while len(run.results) < len(mix) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    result = orjson.loads(message.value)
                    rid = str(result.get("request_id"))
                    if rid not in kind_of or rid not in sent_at:
                        continue  # not ours, or a duplicate after a redelivery
                    run.latencies_ms.append((now - sent_at.pop(rid)) * 1000.0)
                    run.results.append(result)
                    run.kinds.append(kind_of[rid])
                    last = now
                    if progress is not None:
                        progress(1)
        run.seconds = last - started
        run.cpu_after = sample_many(list(pids))
        run.missing = len(mix) - len(run.results)
        await sender
    finally:
        await producer.stop()
        await consumer.stop()
    return run
