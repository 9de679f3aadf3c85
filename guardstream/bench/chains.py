"""Pass-through chains of N hops: plain aiokafka loops and Faust agents, same broker.

They do no work but move each record from topic i to topic i+1, so their CPU per record
per hop is the price of a stream hop itself: the raw chain is the floor, the Faust chain
is what the framework adds on top of it with the gateway's own app settings and tuning.
Each chain runs as its own process (`python -m guardstream.bench.chains raw|faust ...`)
so its CPU can be read from /proc without the driver's share in it; it prints
`ready chain=...` once every hop consumes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["READY_PREFIX", "chain_topics", "create_chain_topics", "main"]

READY_PREFIX = "ready chain="


def chain_topics(prefix: str, hops: int) -> list[str]:
    """hops + 1 topics: the driver produces to the first and reads the last."""
    return [f"{prefix}.hop{i}" for i in range(hops + 1)]


async def create_chain_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            await admin.create_topics([NewTopic(t, num_partitions=partitions,
                                                replication_factor=1) for t in missing])
    finally:
        await admin.close()


# ----------------------------------------------------------------------------- raw chain

async def _raw_hop(bootstrap: str, group: str, source: str, target: str, producer: Any,
                   assigned: asyncio.Event) -> None:
    """Consume a batch, produce it on, wait for the acks, let auto-commit take the offsets:
    the same at-least-once shape as a stage agent, without a framework around it."""
    from aiokafka import AIOKafkaConsumer

    from guardstream.settings import fetch_max_wait_ms

    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True,
                                auto_commit_interval_ms=1000, session_timeout_ms=6000,
                                heartbeat_interval_ms=1000, rebalance_timeout_ms=3000,
                                fetch_max_wait_ms=fetch_max_wait_ms())
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            if consumer.assignment():
                assigned.set()
            futures = [await producer.send(target, key=m.key, value=m.value, headers=m.headers)
                       for messages in batch.values() for m in messages]
            if futures:
                await asyncio.gather(*futures)
    finally:
        await consumer.stop()


async def run_raw_chain(bootstrap: str, prefix: str, hops: int) -> None:
    # The gateway's keyed partitioning, as in the Faust chain: it is producer code, not
    # Faust, and aiokafka's own byte-by-byte murmur2 made the raw hop ~3% dearer, which
    # flattered the Faust/raw ratio (docs/performance.md, ninth round).
    from guardstream.partitioner import KeyPartitionedProducer

    topics = chain_topics(prefix, hops)
    producer = KeyPartitionedProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    events = [asyncio.Event() for _ in range(hops)]
    tasks = [asyncio.create_task(_raw_hop(bootstrap, f"{prefix}-raw-{i}", topics[i],
                                          topics[i + 1], producer, events[i]))
             for i in range(hops)]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
        print(f"{READY_PREFIX}raw pid={os.getpid()}", flush=True)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await producer.stop()


# --------------------------------------------------------------------------- Faust chain

def run_faust_chain(prefix: str, hops: int) -> int:
    """N Faust agents in one worker, built on the gateway's own app settings and tuning,
    each doing what `StageAgent` does around a stage: events in, send, await the ack."""
    import faust

    from guardstream.app import create_app
    from guardstream.faust_tuning import tune_worker
    from guardstream.settings import Settings

    settings = dataclasses.replace(Settings.from_env(), topic_prefix=prefix)
    app = create_app(settings, "chain")  # the gateway's settings and tuning
    topics = [app.topic(name, key_serializer="raw", value_serializer="raw",
                        partitions=settings.partitions)
              for name in chain_topics(prefix, hops)]

    def make_agent(target: faust.TopicT) -> Any:
        async def hop(stream: faust.StreamT) -> None:
            async for _ in stream:  # as StageAgent does: the event without `events()`
                event = stream.current_event
                if event is None:
                    continue
                message = event.message
                fut = await target.send(key=message.key, value=message.value)
                await fut
        return hop

    for i in range(hops):
        app.agent(topics[i], name=f"hop{i}",
                  concurrency=settings.agent_concurrency)(make_agent(topics[i + 1]))

    @app.task
    async def announce_ready() -> None:
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        while not (recovery.completed.is_set() and not app.rebalancing):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        print(f"{READY_PREFIX}faust pid={os.getpid()}", flush=True)

    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    tune_worker(worker)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a pass-through chain for the benchmark")
    parser.add_argument("kind", choices=["raw", "faust"])
    parser.add_argument("--bootstrap", required=True, help="host:port")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--hops", type=int, default=7)
    args = parser.parse_args(argv)
    if args.kind == "raw":
        try:
            asyncio.run(run_raw_chain(args.bootstrap, args.prefix, args.hops))
        except KeyboardInterrupt:
            pass
        return 0
    os.environ["GUARDSTREAM_BROKER"] = f"kafka://{args.bootstrap}"
    return run_faust_chain(args.prefix, args.hops)


if __name__ == "__main__":
    raise SystemExit(main())
