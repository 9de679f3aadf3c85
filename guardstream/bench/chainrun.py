"""Drive a pass-through chain: start it, push N records through, read its CPU from /proc."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import orjson

from guardstream.bench.chains import READY_PREFIX, chain_topics, create_chain_topics
from guardstream.bench.procs import sample
from guardstream.embedded.ports import stop_process

__all__ = ["DEFAULT_CHAIN_RECORDS", "ChainResult", "payload", "run_chain"]

#: Records timed through a chain. A Faust chain pays ~0.25 s of CPU per run that does not
#: grow with the records (the burst filling and draining the seven hops, when the
#: downstream hops get records a few at a time); the raw chain ~0.05 s. At 2,000 records
#: that was ~20% of a Faust run's CPU and moved the hop ratio with the run's length; at
#: 10,000 it is ~6% and a run measures the per-record cost (docs/performance.md, ninth round).
DEFAULT_CHAIN_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class ChainResult:
    kind: str
    hops: int
    records: int
    seconds: float
    cpu_seconds: float
    rss_bytes: int

    @property
    def throughput(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_hop(self) -> float:
        """CPU milliseconds the chain process spent per record per hop."""
        return 1000.0 * self.cpu_seconds / max(1, self.records * self.hops)

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "hops": self.hops, "records": self.records,
                "seconds": round(self.seconds, 3), "throughput": round(self.throughput, 1),
                "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_ms_per_hop": round(self.cpu_ms_per_hop, 4),
                "rss_mb": round(self.rss_bytes / 2**20, 1)}


def payload(index: int, size: int = 300) -> bytes:
    """A JSON value of about `size` bytes, like a small envelope."""
    base = {"request_id": f"c{index}", "user_id": f"u{index % 97}", "pad": ""}
    base["pad"] = "x" * max(0, size - len(orjson.dumps(base)))
    return orjson.dumps(base)


async def _push_through(bootstrap: str, first: str, last: str, records: int,
                        wait_s: float, already: int = 0) -> float:
    """Produce `records`, wait until the last topic holds `already + records`."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from guardstream.settings import fetch_max_wait_ms

    # The chains' own wait: with aiokafka's 500 ms default the last records reached this
    # reader up to half a second late, and the run's seconds and CPU counted that idle.
    consumer = AIOKafkaConsumer(last, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_wait_ms=fetch_max_wait_ms())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(records):
            await producer.send(first, key=f"c{i}".encode(), value=payload(i))
        await producer.flush()
        seen = 0
        deadline = time.monotonic() + wait_s
        while seen < already + records and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            seen += sum(len(messages) for messages in batch.values())
        if seen < already + records:
            raise TimeoutError(f"chain delivered {seen - already} of {records} records")
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()


def run_chain(kind: str, bootstrap: str, *, hops: int = 7, records: int = DEFAULT_CHAIN_RECORDS,
              partitions: int = 4, warmup: int = 200, timeout: float = 300.0) -> ChainResult:
    """Start the chain process, warm it up, time `records` through it, stop it."""
    prefix = f"gsbench{uuid.uuid4().hex[:8]}"
    topics = chain_topics(prefix, hops)
    asyncio.run(create_chain_topics(bootstrap, topics, partitions))
    env = {**os.environ, "GUARDSTREAM_BROKER": f"kafka://{bootstrap}"}
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "guardstream.bench.chains", kind, "--bootstrap", bootstrap,
         "--prefix", prefix, "--hops", str(hops)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None  # noqa: S101 - created with PIPE
        deadline = time.monotonic() + 120
        for raw in proc.stdout:
            if READY_PREFIX in raw.decode(errors="replace"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} chain did not become ready")
        else:
            raise RuntimeError(f"{kind} chain exited before it was ready")
        if warmup:
            asyncio.run(_push_through(bootstrap, topics[0], topics[-1], warmup, timeout))
        before = sample(proc.pid)
        # The last topic already holds the warm-up records: count them in.
        seconds = asyncio.run(_push_through(bootstrap, topics[0], topics[-1], records,
                                            timeout, already=warmup))
        after = sample(proc.pid)
        if before is None or after is None:
            raise RuntimeError(f"{kind} chain exited during the run")
        return ChainResult(kind, hops, records, seconds, after.cpu_seconds - before.cpu_seconds,
                           after.rss_bytes)
    finally:
        stop_process(proc, 20)
