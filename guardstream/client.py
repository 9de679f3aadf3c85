"""A Python client: publish requests to the ingress topic and await their results.

Why it looks like this:
- One shared consumer reads the results topic for the whole process. It is *assigned* every
  partition (no consumer group, so no rebalance delays and no offsets to commit) and
  positioned at the end BEFORE anything is published: a result can never be produced
  before the position it will be read from.
- Waiters are futures keyed by request id. The pending map is bounded (`max_pending`), and
  a waiter that times out or is cancelled removes its entry, so a slow pipeline cannot make
  the client grow without limit.
- Delivery is at-least-once: a result seen twice is dropped (a bounded memory of recent ids).
- A result can arrive for an id nobody waits for yet (`publish` now, `wait` later) or any
  more (the waiter timed out). Those are kept in a small store bounded by count and age, so
  late or orphaned results cost bounded memory.
- Errors never carry request content: messages name ids, topics and counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from guardstream.errors import DecodeError, DependencyError, GuardstreamError
from guardstream.models import Result
from guardstream.models.codec import decode_result
from guardstream.models.request import usable_request_id
from guardstream.topics import TopicNames

if TYPE_CHECKING:
    from guardstream.settings import KafkaSecurity, Settings

__all__ = [
    "ClientClosed",
    "ClientOverloaded",
    "GuardstreamClient",
    "InvalidRequest",
    "ResultTimeout",
    "kafka_security_options",
]

log = logging.getLogger("guardstream.client")

_POLL_MS = 500


class ResultTimeout(GuardstreamError):
    """No result arrived for a request within the timeout."""

    def __init__(self, request_id: str, timeout: float) -> None:
        super().__init__(f"no result for request {request_id} within {timeout:g}s")
        self.request_id = request_id
        self.timeout = timeout


class ClientOverloaded(GuardstreamError):
    """Too many requests are waiting for results; try again later."""


class ClientClosed(GuardstreamError):
    """The client is not started, or was closed while a request was waiting."""


class InvalidRequest(GuardstreamError, ValueError):
    """The request cannot be published (not an object, or an unusable `request_id`)."""


def kafka_security_options(security: KafkaSecurity) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured SASL/TLS settings.

    The same settings the stage workers use (`Settings.kafka_security`), so a client talks
    to the cluster the pipeline runs on without extra configuration.
    """
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(
            cafile=security.ssl_cafile, certfile=security.ssl_certfile,
            keyfile=security.ssl_keyfile)
    if security.protocol.startswith("SASL"):
        options["sasl_mechanism"] = security.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password
    return options


class GuardstreamClient:
    """Publishes requests and awaits their results over Kafka.

    Use as `async with GuardstreamClient(bootstrap) as client: await client.submit(req)`.
    `bootstrap` is `host:port`, a list of them, or `kafka://host:port[,host:port]`.
    Extra keyword arguments go to both aiokafka clients (e.g. security options).
    `fetch_max_wait_ms`: how long the broker may hold the results reader's fetch when no
    result is there (default `GUARDSTREAM_FETCH_MAX_WAIT_MS`, else 25; 500 suits Kafka).
    """

    def __init__(self, bootstrap: str | Sequence[str], *, topic_prefix: str = "guardstream",
                 max_pending: int = 10_000, max_orphans: int = 1_000,
                 orphan_ttl_seconds: float = 120.0, max_remembered: int = 100_000,
                 start_timeout: float = 10.0, fetch_max_wait_ms: int | None = None,
                 **kafka: Any) -> None:
        if min(max_pending, max_orphans, max_remembered) < 1 or orphan_ttl_seconds <= 0:
            raise ValueError("client bounds must be positive")
        self.bootstrap = _bootstrap_list(bootstrap)
        self.topics = TopicNames(topic_prefix)
        self.max_pending = max_pending
        self.max_orphans = max_orphans
        self.orphan_ttl_seconds = orphan_ttl_seconds
        self.max_remembered = max_remembered
        self.start_timeout = start_timeout
        self._kafka = kafka
        # The results reader waits like the stage workers do: aiokafka's default (500 ms)
        # held every result up to half a second on the embedded broker.
        if fetch_max_wait_ms is None:
            from guardstream.settings import fetch_max_wait_ms as from_env

            fetch_max_wait_ms = from_env()
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self._pending: dict[str, asyncio.Future[Result]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._orphans: OrderedDict[str, tuple[float, Result]] = OrderedDict()
        self._reader: asyncio.Task[None] | None = None
        self._producer: Any = None
        self._consumer: Any = None
        self._closed = False
        self.duplicates_dropped = 0
        self.orphans_dropped = 0
        self.undecodable = 0

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> GuardstreamClient:
        """A client for the broker, topic prefix and Kafka security the settings name."""
        kafka = {**kafka_security_options(settings.kafka_security), **options}
        kafka.setdefault("fetch_max_wait_ms", settings.fetch_max_wait_ms)
        return cls(settings.bootstrap_servers, topic_prefix=settings.topic_prefix, **kafka)

    # -- lifecycle ---------------------------------------------------------------------

    def _make_producer(self) -> Any:
        """The producer (a seam: tests substitute an in-memory one)."""
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=2,
                                **self._kafka)

    def _make_consumer(self) -> Any:
        """The results consumer: no group, no commits; positions are set by `start`."""
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                auto_offset_reset="latest",
                                fetch_max_wait_ms=self.fetch_max_wait_ms, **self._kafka)

    async def start(self) -> None:
        """Connect, and position the results consumer at the end of every partition.

        Raises DependencyError when the broker is unreachable or the results topic does
        not exist (start the pipeline, `guardstream up` or workers, first).
        """
        if self._reader is not None:
            return
        self._closed = False
        self._producer = self._make_producer()
        self._consumer = self._make_consumer()
        try:
            await self._producer.start()
            await self._consumer.start()
            await self._assign_results_partitions()
        except GuardstreamError:
            await self._stop_transports()
            raise
        except Exception as exc:  # aiokafka's errors: translated at the boundary
            await self._stop_transports()
            raise DependencyError(f"cannot connect to the broker at {','.join(self.bootstrap)}"
                                  f" ({type(exc).__name__})") from None
        self._reader = asyncio.create_task(self._read(), name="guardstream-client-results")

    async def _assign_results_partitions(self) -> None:
        from aiokafka import TopicPartition

        topic = self.topics.results
        deadline = time.monotonic() + self.start_timeout
        partitions = self._consumer.partitions_for_topic(topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise DependencyError(f"topic {topic} does not exist: start the pipeline "
                                      f"(guardstream up, or its workers) first")
            await self._consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
            partitions = self._consumer.partitions_for_topic(topic)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve positions now, before anything is published
            await self._consumer.position(tp)

    async def close(self) -> None:
        """Stop reading and fail every waiter with ClientClosed."""
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self._stop_transports()
        self._fail_pending(ClientClosed("the client was closed while waiting for a result"))

    async def _stop_transports(self) -> None:
        for transport in (self._consumer, self._producer):
            if transport is not None:
                with contextlib.suppress(Exception):
                    await transport.stop()
        self._consumer = self._producer = None

    async def __aenter__(self) -> GuardstreamClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def healthy(self) -> bool:
        """True while the results reader runs (the broker answered when it started)."""
        return self._reader is not None and not self._reader.done() and not self._closed

    @property
    def pending(self) -> int:
        """How many requests are waiting for their result."""
        return len(self._pending)

    @property
    def orphans(self) -> int:
        """How many results are held for ids nobody waits for (bounded)."""
        return len(self._orphans)

    # -- publishing and waiting ----------------------------------------------------------

    async def publish(self, request: Mapping[str, Any]) -> str:
        """Send one request and wait until the broker has it; returns its request id.

        A missing `request_id` is made up (a fresh uuid). Nothing waits for the result
        yet: it is held as an orphan (bounded by count and age) until `wait(request_id)`
        collects it, so publishing without ever waiting cannot leak memory. `submit`
        registers its waiter before publishing instead.
        """
        request_id, delivery = await self._enqueue(request, register=False)
        await self._confirm(request_id, delivery)
        return request_id

    async def wait(self, request_id: str, timeout: float = 60.0) -> Result:
        """The result for `request_id`; ResultTimeout after `timeout` seconds.

        On timeout or cancellation the waiter is forgotten; a result arriving later is kept
        only as a bounded orphan.
        """
        orphan = self._orphans.pop(request_id, None)
        if orphan is not None:
            self._pending.pop(request_id, None)
            return orphan[1]
        future = self._pending.get(request_id)
        if future is None or not future.done():
            if not self.healthy:
                self._pending.pop(request_id, None)
                raise ClientClosed("the client is not running")
            if future is None:
                future = self._register(request_id)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise ResultTimeout(request_id, timeout) from None
        finally:
            if self._pending.get(request_id) is future:
                del self._pending[request_id]

    async def submit(self, request: Mapping[str, Any], timeout: float = 60.0) -> Result:
        """Publish one request and wait for its result."""
        request_id, delivery = await self._enqueue(request)
        await self._confirm(request_id, delivery)
        return await self.wait(request_id, timeout)

    async def submit_many(self, requests: Iterable[Mapping[str, Any]], timeout: float = 60.0,
                          *, return_exceptions: bool = False) -> list[Any]:
        """Publish a batch, then wait for all of it; results come back in input order.

        With `return_exceptions=True` a request that failed (timeout, invalid) gives its
        exception in its place instead of failing the batch.
        """
        outcomes: list[Any] = []
        deliveries: list[tuple[str, asyncio.Future[Any]] | None] = []
        for request in requests:
            try:
                deliveries.append(await self._enqueue(request))
                outcomes.append(None)
            except GuardstreamError as exc:
                if not return_exceptions:
                    self._forget(deliveries)
                    raise
                deliveries.append(None)
                outcomes.append(exc)

        async def one(item: tuple[str, asyncio.Future[Any]]) -> Result:
            await self._confirm(*item)
            return await self.wait(item[0], timeout)

        waited = await asyncio.gather(*(one(d) for d in deliveries if d is not None),
                                      return_exceptions=return_exceptions)
        answers = iter(waited)
        return [next(answers) if d is not None else outcomes[i]
                for i, d in enumerate(deliveries)]

    def _forget(self, deliveries: list[tuple[str, asyncio.Future[Any]] | None]) -> None:
        for item in deliveries:
            if item is not None:
                self._pending.pop(item[0], None)

    async def _enqueue(self, request: Mapping[str, Any], *,
                       register: bool = True) -> tuple[str, asyncio.Future[Any]]:
        if not isinstance(request, Mapping):
            raise InvalidRequest("a request must be a JSON object")
        if not self.healthy:
            raise ClientClosed("the client is not running (call start() or use async with)")
        body = dict(request)
        if body.get("request_id") is None:
            body["request_id"] = uuid.uuid4().hex
        request_id = usable_request_id(body)
        if request_id is None:
            raise InvalidRequest("request_id must be a non-empty printable string of at most "
                                 "200 characters")
        body["request_id"] = request_id
        if request_id in self._pending:
            raise InvalidRequest(f"request {request_id} is already waiting for a result")
        try:
            value = orjson.dumps(body)
        except TypeError:
            raise InvalidRequest("the request is not JSON-serialisable") from None
        if register:
            self._register(request_id)
        # A resubmitted id expects a new result: forget the old one.
        self._seen.pop(request_id, None)
        self._orphans.pop(request_id, None)
        try:
            delivery = await self._producer.send(self.topics.requests,
                                                 key=request_id.encode(), value=value)
        except Exception as exc:
            self._pending.pop(request_id, None)
            raise DependencyError(f"cannot publish request {request_id} "
                                  f"({type(exc).__name__})") from None
        return request_id, delivery

    async def _confirm(self, request_id: str, delivery: asyncio.Future[Any]) -> None:
        try:
            await delivery
        except Exception as exc:
            self._pending.pop(request_id, None)
            raise DependencyError(f"the broker did not accept request {request_id} "
                                  f"({type(exc).__name__})") from None

    def _register(self, request_id: str) -> asyncio.Future[Result]:
        if len(self._pending) >= self.max_pending:
            raise ClientOverloaded(f"{len(self._pending)} requests are already waiting "
                                   f"(max_pending={self.max_pending})")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        return future

    # -- reading results -----------------------------------------------------------------

    async def _read(self) -> None:
        failures = 0
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=_POLL_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Transient broker trouble: aiokafka reconnects; we back off and keep going.
                failures += 1
                log.warning("results consumer error %s (attempt %d)", type(exc).__name__,
                            failures)
                await asyncio.sleep(min(5.0, 0.2 * failures))
                continue
            failures = 0
            for messages in batches.values():
                for message in messages:
                    self._deliver(message.value)
            self._expire_orphans()

    def _deliver(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            result = decode_result(value)
        except DecodeError:
            self.undecodable += 1
            return
        request_id = result.request_id
        if request_id is None:
            return
        if request_id in self._seen:
            self.duplicates_dropped += 1
            return
        self._seen[request_id] = None
        while len(self._seen) > self.max_remembered:
            self._seen.popitem(last=False)
        future = self._pending.get(request_id)
        if future is not None:
            if not future.done():
                future.set_result(result)
            return
        self._orphans[request_id] = (time.monotonic(), result)
        while len(self._orphans) > self.max_orphans:
            self._orphans.popitem(last=False)
            self.orphans_dropped += 1

    def _expire_orphans(self) -> None:
        cutoff = time.monotonic() - self.orphan_ttl_seconds
        while self._orphans:
            request_id, (arrived, _) = next(iter(self._orphans.items()))
            if arrived >= cutoff:
                break
            del self._orphans[request_id]
            self.orphans_dropped += 1

    def _fail_pending(self, error: GuardstreamError) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: nobody may be awaiting it any more


def _bootstrap_list(bootstrap: str | Sequence[str]) -> list[str]:
    parts = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    servers = [p.strip().removeprefix("kafka://") for p in parts if p.strip()]
    if not servers:
        raise ValueError("bootstrap must name at least one host:port")
    return servers
