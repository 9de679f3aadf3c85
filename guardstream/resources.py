"""What the stages of one process share: settings, Redis, a thread pool, heavy singletons.

Heavy objects (the Presidio analyzer, classifiers, tokenizers) are built once per process
through `shared()`, so the redact and output stages in one `scan` reuse one analyzer.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from guardstream.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Resources"]

T = TypeVar("T")


class Resources:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis: Redis | None = None
        self._shared: dict[str, Any] = {}
        self._lock = threading.Lock()
        workers = int(os.environ.get("GUARDSTREAM_CPU_THREADS", "2"))
        self.executor = ThreadPoolExecutor(max_workers=max(1, workers),
                                           thread_name_prefix="guardstream-cpu")

    def redis(self) -> Redis:
        """The process's Redis client (REDIS_URL); connections are made on first use."""
        if self._redis is None:
            from guardstream.autopipeline import AutoPipelineRedis

            url = self.settings.redis_url or "redis://127.0.0.1:6379/0"
            timeout = self.settings.policy.stages.ratelimit.redis_timeout_seconds
            # Commands of concurrent requests share round trips (see autopipeline).
            self._redis = AutoPipelineRedis.from_url(url, socket_timeout=timeout,
                                                     socket_connect_timeout=timeout,
                                                     health_check_interval=30)
        return self._redis

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """One instance per process of an expensive object, built on first request."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = factory()
            value: T = self._shared[key]
            return value

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound work off the event loop so consumers keep heartbeating."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        self.executor.shutdown(wait=False, cancel_futures=True)
