"""`guardstream up`: everything on one machine, for demos, development and tests.

Starts what is not configured (a Kafka-protocol broker unless GUARDSTREAM_BROKER, Redis
unless REDIS_URL, the dev model unless OPENAI_API_KEY/OPENAI_BASE_URL) and one worker
process per stage, prints `ready broker=HOST:PORT` once every stage is consuming, and on
SIGINT/SIGTERM stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Mapping

from guardstream.agents import STAGE_ORDER
from guardstream.settings import Settings
from guardstream.topics.admin import ensure_topics
from guardstream.worker import READY_PREFIX

__all__ = ["run_up"]

READY_TIMEOUT_SECONDS = 120.0


def run_up(settings: Settings, *, replicas: Mapping[str, int] | None = None) -> int:
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if settings.broker is None:
            from guardstream.embedded.broker import EmbeddedBroker

            broker = stack.enter_context(EmbeddedBroker())
            settings = dataclasses.replace(settings, broker=broker.url)
            env["GUARDSTREAM_BROKER"] = broker.url
        if settings.redis_url is None:
            from guardstream.embedded.redis import EmbeddedRedis

            redis = stack.enter_context(EmbeddedRedis())
            settings = dataclasses.replace(settings, redis_url=redis.url)
            env["REDIS_URL"] = redis.url
        if not settings.provider_configured:
            from guardstream.devmodel import DevModelServer

            dev = stack.enter_context(DevModelServer())
            env["OPENAI_BASE_URL"] = dev.base_url
            env["GUARDSTREAM_DEV_MODEL"] = "1"
        return asyncio.run(_supervise(settings, env, dict(replicas or {})))


async def _supervise(settings: Settings, env: dict[str, str], replicas: dict[str, int]) -> int:
    await ensure_topics(settings)
    children: list[asyncio.subprocess.Process] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        for stage in STAGE_ORDER:
            for _ in range(replicas.get(stage, 1)):
                children.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "guardstream.cli", "worker", "--stage", stage,
                    env=env, stdout=asyncio.subprocess.PIPE))
        waiting = asyncio.ensure_future(_all_ready(children))
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([waiting, stopping], timeout=READY_TIMEOUT_SECONDS,
                                     return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            return 0
        if waiting not in done or not waiting.result():
            print("guardstream: not every stage became ready", file=sys.stderr)
            return 1
        print(f"ready broker={settings.bootstrap_servers[0]}", flush=True)
        exited = asyncio.ensure_future(asyncio.wait(
            [asyncio.ensure_future(child.wait()) for child in children],
            return_when=asyncio.FIRST_COMPLETED))
        await asyncio.wait([exited, asyncio.ensure_future(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            print("guardstream: a stage worker exited", file=sys.stderr)
            return 1
        return 0
    finally:
        await _terminate(children)


async def _all_ready(children: list[asyncio.subprocess.Process]) -> bool:
    return all(await asyncio.gather(*(_wait_ready(child) for child in children)))


_drains: set[asyncio.Task[None]] = set()


async def _wait_ready(child: asyncio.subprocess.Process) -> bool:
    assert child.stdout is not None  # noqa: S101 - created with PIPE
    while line := await child.stdout.readline():
        # Faust may prefix terminal escape codes, so look for the marker anywhere.
        if READY_PREFIX in line.decode(errors="replace"):
            task = asyncio.ensure_future(_drain(child.stdout))
            _drains.add(task)
            task.add_done_callback(_drains.discard)
            return True
    return False


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def _terminate(children: list[asyncio.subprocess.Process]) -> None:
    timeout = 15.0
    for child in children:
        if child.returncode is None:
            child.terminate()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), timeout)
    except TimeoutError:
        for child in children:
            if child.returncode is None:
                child.kill()
        await asyncio.gather(*(c.wait() for c in children))
