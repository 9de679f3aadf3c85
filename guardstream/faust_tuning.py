"""What a Faust hop costs beyond a raw aiokafka hop, and the parts of it we can drop.

Measured with py-spy on a 7-hop pass-through chain of Faust agents (`guardstream bench`,
`guardstream.bench.chains`), 2 cores, Tansu broker: a hop cost ~0.25 ms of CPU per record
against ~0.014-0.02 ms for a plain aiokafka consume/produce loop; with what is here it costs
~0.05 ms (docs/performance.md has the runs). Where it went:

- 0.146 -> 0.080 ms per hop: the fetch loop hands each record to its stream with
  `wait_first(callback(message), suspend_flow.wait())`, four tasks, an `asyncio.wait` and
  the event-loop rounds they need, per record. `_Consumer.wait_first` starts the hand-off
  eagerly in the fetch loop's task (`guardstream.eager`) and races it like Faust only when
  it has to wait.
- ~20%: `Topic.send` -> `_send_now` -> `publish_message`: a `PendingMessage` and a
  `FutureMessage` per record, the schema/codec pass (a no-op for our raw bytes), sensor
  calls and a done-callback that only feeds those sensors. `FastTopic.send` hands raw
  bytes straight to the app's producer (same producer, same errors, same returned
  future) and keeps Faust's path for anything else (schemas, callbacks, attachments).
- ~10%: Faust's `Producer.send` dispatches its `on_produce_message` signal for every
  record (a generator over the receivers) even when nothing listens; `_Producer.send`
  calls aiokafka directly while no receiver is connected, with Faust's error translation.
- ~3%: decoding raw records through the serializer registry; `FastTopic._compile_decode`.
- ~0.055 -> 0.050 ms, chain 1,890 -> 2,470 records/s: `Topic.send` asks
  `app.maybe_start_producer()` for the producer on every send, a `stampede` wrapper that
  yields to the event loop two or three times per call. `FastTopic.send` keeps the app's
  producer once it runs (not when transactional) and asks again only if it stops.
- ~3%: before every record the conductor awaits `producer.buffer.wait_until_ebb()`, whose
  `size` reads `conf.producer_threaded` through Faust's settings registry each time.
  `_Producer` gives an unthreaded producer (ours) a buffer that skips the lookup.
- 0.089 -> 0.062 ms: 32 records in flight per agent instead of 8 (`Settings`), so more
  records share a produce request under load.
- ~1-3%: the `Monitor` sensor's per-event bookkeeping (message/event/send counters and
  latency deques that only Faust's web views read; `web_enabled=False` here).
  `QuietMonitor` keeps the object (Faust and its web views expect one) without the work.
- ~10%: faust-streaming's Cython stream iterator awaits the channel for every record,
  even when records are already queued, unless `cython_optimizations` (opt-in since 0.15)
  is on; it is, for every guardstream app.
- ~3%: Faust's `getmany` reads the partition's high-water mark (through the consumer
  thread) for every record, only for the monitor; `_Consumer.getmany` reads it once a batch.
- ~15%: Faust's stream iterator passes each record through a coroutine of its own, an
  ABC check and an awaited `on_merge`; `LeanStream` (`guardstream.faust_stream`) iterates
  a topic's queue directly with the same semantics.
- Debug logging of every send with the payload formatted in: gone once the worker's
  spinner no longer sets the root logger to DEBUG (`tune_worker`) and faust/aiokafka/mode
  loggers sit at WARNING (`guardstream.logs`).

- Latency, not CPU: Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500`
  hard-coded. A broker that does not answer a long-poll fetch early when data arrives
  (the embedded Tansu broker answers a held fetch only at half the wait or at its end)
  then adds up to 0.75 s per hop, ~2 s end to end at 10 requests/s. `TunedTransport`
  (selected through `broker_consumer=gskafka://...`) builds the same consumer with
  `GUARDSTREAM_FETCH_MAX_WAIT_MS` (default 25): on Kafka, which answers early, it only
  means more frequent empty fetches while idle.

The rest is Faust's consume path (consumer thread hand-off, conductor, channel queue,
event/ack bookkeeping per record) and produce requests; those are structural and are
reported, not patched, in docs/performance.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.sensors.base import SensorDelegate
from faust.sensors.monitor import Monitor
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from mode.services import WaitResults

from guardstream.eager import start_eagerly
from guardstream.faust_stream import LeanStream
from guardstream.partitioner import KeyPartitionedProducer
from guardstream.settings import fetch_max_wait_ms

__all__ = ["FETCH_MAX_WAIT_MS", "SCHEME", "FastTopic", "InFlight", "QuietMonitor",
           "QuietSensors", "TunedTransport", "faust_options", "quiet_sensors", "tune_worker"]

#: Transport scheme of the tuned consumer (registered with Faust's transport registry).
SCHEME = "gskafka"
FETCH_MAX_WAIT_MS = fetch_max_wait_ms()


class QuietMonitor(Monitor):
    """A Monitor that records nothing per message, event or send.

    Commit, rebalance and table hooks stay Faust's: they run rarely and feed its logs.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> Any:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        return None


class QuietSensors(SensorDelegate):
    """Skips the per-record sensor dispatch while every sensor is a `QuietMonitor`.

    Faust calls the delegate four times per record (message in/out, stream event in/out),
    each building a dict over the sensors; with only the quiet monitor installed that is
    work for nothing. Adding any other sensor (Datadog, Prometheus, ...) turns it back on.
    """

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._quiet = True

    def add(self, sensor: Any) -> None:
        super().add(sensor)
        self._quiet = all(isinstance(s, QuietMonitor) for s in self._sensors)

    def remove(self, sensor: Any) -> None:
        super().remove(sensor)
        self._quiet = all(isinstance(s, QuietMonitor) for s in self._sensors)

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        if not self._quiet:
            super().on_message_in(tp, offset, message)

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        return None if self._quiet else super().on_stream_event_in(tp, offset, stream, event)

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        if not self._quiet:
            super().on_stream_event_out(tp, offset, stream, event, state)

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        if not self._quiet:
            super().on_message_out(tp, offset, message)


class FastTopic(faust.Topic):
    """`send` of raw bytes goes straight to the producer; anything else takes Faust's path.

    Returns the producer's future like `Topic.send` does (await it for the broker's ack),
    and raises what `Topic.send` raises (Faust's `ProducerSendError` for Kafka errors).

    Faust looks the producer up for every send through `app.maybe_start_producer`, a
    `stampede` wrapper that yields to the event loop two or three times per call: two
    loop rounds per record per hop. Once the app's own producer is running (and the app
    is not transactional, where Faust hands out its transaction manager instead), it is
    kept and used directly while it stays started.
    """

    _running_producer: Any = None
    _fast_name: str = ""

    async def send(self, *, key: Any = None, value: Any = None,
                   partition: int | None = None, timestamp: float | None = None,
                   headers: Any = None, schema: Any = None, key_serializer: Any = None,
                   value_serializer: Any = None, callback: Any = None,
                   force: bool = False) -> Any:
        if (schema is None and key_serializer is None and value_serializer is None
                and callback is None and (value is None or value.__class__ is bytes)
                and (key is None or key.__class__ is bytes)):
            producer = self._running_producer  # set only once this topic's path is raw
            if producer is not None and producer.started:
                return await producer.send(self._fast_name, key, value, partition,
                                           timestamp, headers)
            if (_raw(self.key_serializer) and _raw(self.value_serializer)
                    and not self.app._attachments.enabled):  # type: ignore[attr-defined]
                producer = await self._get_producer()
                app = self.app
                name = self.get_topic_name()
                if producer is app.producer and producer.started and not app.in_transaction:
                    self._running_producer, self._fast_name = producer, name
                return await producer.send(name, key, value, partition, timestamp, headers)
        return await super().send(key=key, value=value, partition=partition,
                                  timestamp=timestamp, headers=headers, schema=schema,
                                  key_serializer=key_serializer,
                                  value_serializer=value_serializer, callback=callback,
                                  force=force)


    def _compile_decode(self) -> None:
        """Raw bytes in, the same bytes in the event: skip the serializer registry.

        Faust's schema decode passes key and value through the codec registry (the `raw`
        codec, then model auto-detection) for every record, and returns them unchanged.
        """
        if (_raw(self.key_serializer) and _raw(self.value_serializer)
                and self.key_type is None and self.value_type is None):
            app = self.app
            event_class: Any = None

            async def decode(message: Any, *, propagate: bool = False) -> Any:
                nonlocal event_class
                if event_class is None:  # `app.create_event` reads it from conf every time
                    event_class = app.conf.Event
                return event_class(app, message.key, message.value, message.headers, message)

            self.decode = decode  # type: ignore[method-assign]
            return
        super()._compile_decode()


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher; no public setter.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class InFlight:
    """Offsets an agent has taken from its stream and not finished, per partition.

    Faust acks a record when its actor asks for the next one, so with agent concurrency
    records finish out of order. Its commit logic then misses a gap at the head of the
    acked offsets (an off-by-one against the committed offset, and no check at all before
    a partition's first commit): a later record's ack could commit past a record still
    being processed, which a crash or SIGTERM then loses. `_Consumer` never commits past
    the lowest offset in flight. A record interrupted by shutdown stays "in flight", so
    its offset is never committed by this process and is redelivered.
    """

    def __init__(self) -> None:
        self._offsets: dict[Any, set[int]] = {}

    def add(self, tp: Any, offset: int) -> None:
        self._offsets.setdefault(tp, set()).add(offset)

    def done(self, tp: Any, offset: int) -> None:
        self._offsets.get(tp, set()).discard(offset)

    def floor(self, tp: Any) -> int | None:
        offsets = self._offsets.get(tp)
        return min(offsets) if offsets else None

    def forget(self, tps: Any) -> None:
        for tp in tps:
            self._offsets.pop(tp, None)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        """Faust's `Consumer.getmany`, reading each partition's high-water mark once a batch.

        Faust asks the consumer thread for the high-water mark of every record's partition
        (only to hand it to the monitor's lag gauge), the same number for a whole batch.
        """
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:  # as Faust does: seek back to the committed offsets
            try:
                await self.perform_seek()
            except Exception as exc:  # Faust logs it and fetches again
                self.log.warning("exception performing seek when flow not active %r", exc)
            return
        track_end_offset = self.app.monitor.track_tp_end_offset
        for tp in records:
            track_end_offset(tp, self.highwater(tp))
        buffered = self._buffered_partitions
        to_message = self._to_message
        app = self.app
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or app.consumer_generation_id != generation_id:
                break
            if active_partitions is None or tp in active_partitions or tp in buffered:
                yield tp, to_message(tp, record)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """Hand a record to its stream without four tasks per record.

        Faust's fetch loop delivers every record with
        `wait_first(callback(message), suspend_flow.wait())`: mode makes a task of each
        argument and of the stopped/crashed events, and cancels three of them, although
        the delivery (a channel put) almost always completes without waiting. That was
        ~20% of a pass-through hop's CPU. Here the delivery starts in the fetch loop's own
        task; only if it has to wait (a full stream buffer) is it raced like Faust does.
        """
        if (timeout is None and len(coros) == 2 and _is_wait_of(coros[1], self.suspend_flow)
                and not self.suspend_flow.is_set() and not self.should_stop):
            deliver, suspended = coros
            suspended.close()  # never started; a fresh one is made if it is needed
            started = start_eagerly(deliver)
            if started.done:
                return WaitResults([deliver], [started.value], False)
            coros = (started.pending, self.suspend_flow.wait())
        return await super().wait_first(*coros, timeout=timeout)

    def _new_offset(self, tp: Any) -> int | None:
        """The offset to commit for `tp`: the end of the consecutive run of acked offsets
        that starts at the committed offset and stops before any record in flight.

        Faust's own version misses a gap at the head of the acked offsets, and Faust acks a
        record interrupted by shutdown (the stream's `finally`), so a record still in
        flight is excluded here explicitly.
        """
        acked = self._acked[tp]
        if not acked:
            return None
        gap = self._gap[tp]
        if gap:  # offsets the broker skipped (e.g. transaction markers) count as done
            max_offset = max(acked)
            filler = [o for iv in sorted(gap.overlap(0, max_offset), key=lambda iv: iv.begin)
                      for o in range(iv.begin, iv.end)]
            if filler:
                acked.extend(filler)
                gap.chop(0, max(filler[-1], max_offset + 1))
        acked.sort()
        committed = self._committed_offset[tp]
        if committed is not None and acked[0] > committed:
            return None  # the record at `committed` is not acked yet
        inflight: InFlight | None = getattr(self.app, "guardstream_inflight", None)
        floor = inflight.floor(tp) if inflight is not None else None
        run = [acked[0]]
        for offset in acked[1:]:
            if offset != run[-1] + 1:
                break
            run.append(offset)
        if floor is not None:
            run = [offset for offset in run if offset < floor]
        if not run:
            return None
        del acked[:len(run)]
        self._acked_index[tp].difference_update(run)
        return run[-1] + 1


def _is_wait_of(coro: Any, event: Any) -> bool:
    """Whether `coro` is an unstarted `event.wait()` coroutine."""
    frame = getattr(coro, "cr_frame", None)
    return (frame is not None and getattr(coro, "__qualname__", "") == "Event.wait"
            and frame.f_locals.get("self") is event)


class _ProducerBuffer(ProducerBuffer):
    """Faust's buffer for an unthreaded producer, where `size` is the pending queue's length."""

    async def wait_until_ebb(self) -> None:
        if len(self.pending._queue) > self.max_messages:  # type: ignore[attr-defined]
            await super().wait_until_ebb()


class _Producer(faust_aiokafka.Producer):
    def __init__(self, transport: Any, loop: Any = None, **kwargs: Any) -> None:
        super().__init__(transport, loop=loop, **kwargs)
        self._produce_signal = self.app.on_produce_message
        if not self.app.conf.producer_threaded:
            buffer = _ProducerBuffer(loop=self.loop, beacon=self.beacon)
            buffer.app = self.app
            self.buffer = buffer

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any, *,
                   transactional_id: str | None = None) -> Any:
        """Faust's `send` without its per-record `on_produce_message` dispatch while no
        receiver is connected; transactional sends take Faust's path."""
        producer = self._producer
        signal = self._produce_signal
        if (transactional_id or producer is None or signal._receivers
                or signal._filter_receivers):
            return await super().send(topic, key, value, partition, timestamp, headers,
                                      transactional_id=transactional_id)
        if headers is not None and isinstance(headers, Mapping):
            headers = list(headers.items())
        if headers is not None and not self.allow_headers:
            headers = None
        try:
            return await producer.send(
                topic, value, key=key, partition=partition,
                timestamp_ms=int(timestamp * 1000.0) if timestamp else timestamp,
                headers=headers)
        except KafkaError as exc:  # as Faust translates it
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc

    @property
    def _producer_type(self) -> type[KeyPartitionedProducer]:
        return KeyPartitionedProducer


class TunedTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with a short fetch wait (see the module docstring)."""

    Consumer = _Consumer
    Producer = _Producer


TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:TunedTransport")


def _raw(codec: Any) -> bool:
    return codec == "raw"


def faust_options(bootstrap_servers: list[str]) -> dict[str, Any]:
    """Extra `faust.App(...)` keyword arguments for every guardstream app."""
    servers = [f"{SCHEME}://{server}" for server in bootstrap_servers]
    return {"Topic": FastTopic, "Stream": LeanStream, "monitor": QuietMonitor(),
            "broker_consumer": servers, "broker_producer": servers,
            "cython_optimizations": True}


def quiet_sensors(app: faust.App) -> faust.App:
    """Install `QuietSensors` on a new app (before its agents make their streams)."""
    app.sensors = QuietSensors(app)
    return app


def tune_worker(worker: Any) -> Any:
    """The spinner sets the root logger to DEBUG: every send then formats a debug record
    with the payload in it (~15% of a worker's CPU, and content in memory)."""
    worker.spinner = None
    return worker
