"""A Python client: publish requests to the ingress topic and await their results.

One shared consumer reads the results topic; futures are keyed by request id. Results
that arrive twice (at-least-once delivery) are dropped, and memory for late or orphaned
results is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from guardstream.errors import DecodeError, GuardstreamError
from guardstream.models import Result
from guardstream.models.codec import decode_result
from guardstream.topics import TopicNames

__all__ = ["GuardstreamClient", "ResultTimeout"]


class ResultTimeout(GuardstreamError):
    """No result arrived for a request within the timeout."""


class GuardstreamClient:
    def __init__(self, bootstrap: str | list[str], *, topic_prefix: str = "guardstream",
                 max_remembered: int = 100_000, **kafka: Any) -> None:
        self.bootstrap = bootstrap
        self.topics = TopicNames(topic_prefix)
        self._kafka = kafka
        self._pending: dict[str, asyncio.Future[Result]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._early: OrderedDict[str, Result] = OrderedDict()
        self._max = max_remembered
        self.duplicates_dropped = 0
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                          linger_ms=2, **self._kafka)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                          enable_auto_commit=False,
                                          auto_offset_reset="latest", **self._kafka)
        await self._producer.start()
        await self._consumer.start()
        from aiokafka import TopicPartition

        partitions = None
        for _ in range(50):
            partitions = self._consumer.partitions_for_topic(self.topics.results)
            if partitions:
                break
            await self._consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        if not partitions:
            raise GuardstreamError(f"topic {self.topics.results} does not exist")
        assigned = [TopicPartition(self.topics.results, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve positions now, before anything is published
            await self._consumer.position(tp)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._consumer.stop()
        await self._producer.stop()
        for future in self._pending.values():
            future.cancel()

    async def __aenter__(self) -> GuardstreamClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def publish(self, request: Mapping[str, Any]) -> str:
        """Send one request without waiting; returns its request id (made if missing)."""
        body = dict(request)
        body.setdefault("request_id", uuid.uuid4().hex)
        request_id = str(body["request_id"])
        self._pending.setdefault(request_id, asyncio.get_running_loop().create_future())
        await self._producer.send(self.topics.requests, key=request_id.encode(),
                                  value=orjson.dumps(body))
        return request_id

    async def wait(self, request_id: str, timeout: float = 60.0) -> Result:
        early = self._early.pop(request_id, None)
        if early is not None:
            self._pending.pop(request_id, None)
            return early
        future = self._pending.setdefault(request_id,
                                          asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise ResultTimeout(f"no result for request {request_id} in {timeout:g}s") from None
        finally:
            if future.done():
                self._pending.pop(request_id, None)

    async def submit(self, request: Mapping[str, Any], timeout: float = 60.0) -> Result:
        request_id = await self.publish(request)
        await self._producer.flush()
        return await self.wait(request_id, timeout)

    async def submit_many(self, requests: Iterable[Mapping[str, Any]],
                          timeout: float = 60.0) -> list[Result]:
        ids = [await self.publish(r) for r in requests]
        await self._producer.flush()
        return list(await asyncio.gather(*(self.wait(i, timeout) for i in ids)))

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    self._deliver(message.value)

    def _deliver(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            result = decode_result(value)
        except DecodeError:
            return
        request_id = result.request_id
        if request_id is None:
            return
        if request_id in self._seen:
            self.duplicates_dropped += 1
            return
        self._remember(self._seen, request_id, None)
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(result)
        elif future is None:
            self._remember(self._early, request_id, result)

    def _remember(self, store: OrderedDict[str, Any], key: str, value: Any) -> None:
        store[key] = value
        while len(store) > self._max:
            store.popitem(last=False)
