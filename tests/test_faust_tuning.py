"""The tuned consumer's record hand-off: same outcome as Faust's `wait_first`, fewer tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mode.utils.locks import Event

from guardstream.faust_tuning import _Consumer, _is_wait_of


def _consumer() -> _Consumer:
    consumer = object.__new__(_Consumer)
    consumer.suspend_flow = Event()  # type: ignore[assignment]  # mode's, as Faust makes it
    consumer._stopped = Event()
    consumer._crashed = Event()
    consumer._loop = asyncio.get_running_loop()
    return consumer


async def test_the_fetch_loops_call_is_recognised() -> None:
    consumer = _consumer()
    other = Event()
    wait, other_wait, sleep = consumer.suspend_flow.wait(), other.wait(), asyncio.sleep(0)
    try:
        assert _is_wait_of(wait, consumer.suspend_flow)
        assert not _is_wait_of(other_wait, consumer.suspend_flow)
        assert not _is_wait_of(sleep, consumer.suspend_flow)
    finally:
        for coro in (wait, other_wait, sleep):
            coro.close()


async def test_a_delivery_that_does_not_wait_needs_no_task(
        monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = _consumer()
    created: list[Any] = []
    real = asyncio.ensure_future

    def counting(*args: Any, **kwargs: Any) -> Any:
        created.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "ensure_future", counting)
    delivered: list[int] = []

    async def deliver() -> str:
        delivered.append(1)
        return "put"

    result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
    assert delivered == [1]
    assert result.results == ["put"]
    assert not result.stopped
    assert created == []


async def _blocked_delivery(consumer: _Consumer) -> tuple[asyncio.Queue[int], Any]:
    """A hand-off of record 1 into a full buffer (holding record 0), as the fetch loop makes it."""
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(0)
    waiter = asyncio.ensure_future(
        consumer.wait_first(queue.put(1), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    return queue, waiter


async def test_a_delivery_that_waits_completes_when_the_buffer_drains() -> None:
    consumer = _consumer()
    queue, waiter = await _blocked_delivery(consumer)
    assert queue.get_nowait() == 0
    result = await asyncio.wait_for(waiter, 2)
    assert not result.stopped
    assert queue.get_nowait() == 1


async def test_a_waiting_delivery_is_abandoned_when_the_flow_is_suspended() -> None:
    # Faust's semantics: a rebalance suspends the flow and the blocked hand-off is dropped
    # (the record is fetched again from the committed offset).
    consumer = _consumer()
    queue, waiter = await _blocked_delivery(consumer)
    consumer.suspend_flow.set()
    result = await asyncio.wait_for(waiter, 2)
    assert [getattr(c, "__qualname__", None) for c in result.done] == ["Event.wait"]
    await asyncio.sleep(0.01)
    assert queue.get_nowait() == 0
    assert queue.empty()  # the abandoned put never lands


async def test_while_suspended_faust_decides_as_before() -> None:
    consumer = _consumer()
    consumer.suspend_flow.set()
    delivered: list[int] = []

    async def deliver() -> None:
        await asyncio.sleep(0.05)
        delivered.append(1)

    result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
    # the suspended flow won the race
    assert [getattr(c, "__qualname__", None) for c in result.done] == ["Event.wait"]
    await asyncio.sleep(0.1)
    assert delivered == []


@pytest.mark.parametrize(("key", "value"), [
    (b"req-1", b'{"request_id": "req-1"}'),
    (None, b"\xff\xfe not json"),
    (b"k", None),
    (b"k", b'{"__faust": {"ns": "x.Model"}, "a": 1}'),  # never reconstructed as a model
])
async def test_raw_topics_hand_over_the_bytes_unchanged(key: bytes | None,
                                                        value: bytes | None) -> None:
    import faust
    from faust.types import Message

    from guardstream.faust_tuning import FastTopic

    app = faust.App("gs-test-decode", Topic=FastTopic, broker="memory://")
    topic = app.topic("t", key_serializer="raw", value_serializer="raw")
    plain = faust.Topic(app, topics=["t"], key_serializer="raw", value_serializer="raw")
    assert type(topic) is FastTopic
    message = Message("t", 0, 5, 0.0, 0, [("h", b"v")], key, value, None)
    event, expected = await topic.decode(message), await plain.decode(message)
    assert (event.key, event.value, event.headers) == (key, value, {"h": b"v"})
    assert (event.key, event.value, event.headers) == (
        expected.key, expected.value, expected.headers)
    assert event.message is message


async def test_topics_with_a_codec_still_decode_through_faust() -> None:
    import faust
    from faust.types import Message

    from guardstream.faust_tuning import FastTopic

    app = faust.App("gs-test-decode-json", Topic=FastTopic, broker="memory://")
    topic = app.topic("t", key_serializer="raw", value_serializer="json")
    message = Message("t", 0, 5, 0.0, 0, [], b"k", b'{"a": 1}', None)
    event = await topic.decode(message)
    assert event.value == {"a": 1}


class _CountingSensor:
    """A stand-in for a user's sensor (Datadog, Prometheus): counts per-record calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.calls.append("message_in")

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        self.calls.append("event_in")
        return "state"

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        self.calls.append(f"event_out:{state}")

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        self.calls.append("message_out")


def _per_record_calls(sensors: Any) -> Any:
    sensors.on_message_in("tp", 1, "m")
    state = sensors.on_stream_event_in("tp", 1, "s", "e")
    sensors.on_stream_event_out("tp", 1, "s", "e", state)
    sensors.on_message_out("tp", 1, "m")
    return state


async def test_per_record_sensor_calls_are_skipped_with_only_the_quiet_monitor() -> None:
    import faust

    from guardstream.faust_tuning import QuietMonitor, QuietSensors, quiet_sensors

    app = quiet_sensors(faust.App("gs-test-sensors", broker="memory://"))
    assert isinstance(app.sensors, QuietSensors)
    app.sensors.add(QuietMonitor())
    assert _per_record_calls(app.sensors) is None

    user_sensor = _CountingSensor()
    app.sensors.add(user_sensor)
    state = _per_record_calls(app.sensors)
    assert user_sensor.calls == ["message_in", "event_in", "event_out:state", "message_out"]
    assert state is not None

    app.sensors.remove(user_sensor)
    user_sensor.calls.clear()
    _per_record_calls(app.sensors)
    assert user_sensor.calls == []


async def test_the_stage_app_uses_the_quiet_sensors() -> None:
    from guardstream.app import create_app
    from guardstream.faust_tuning import QuietSensors
    from guardstream.settings import Settings

    app = create_app(Settings.from_env(), "validate")
    assert isinstance(app.sensors, QuietSensors)


class _FakeProducer:
    """Stands in for the app's producer: records sends, can be stopped."""

    def __init__(self) -> None:
        self.started = True
        self.sent: list[tuple[str, bytes | None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any) -> str:
        self.sent.append((topic, value))
        return "future"


async def test_send_looks_the_producer_up_only_until_it_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import faust

    from guardstream.faust_tuning import FastTopic

    app = faust.App("gs-test-send", Topic=FastTopic, broker="memory://")
    topic = app.topic("out", key_serializer="raw", value_serializer="raw")
    producer = _FakeProducer()
    app.producer = producer  # type: ignore[assignment]
    lookups: list[int] = []

    async def get_producer() -> Any:  # Faust's stampede-wrapped lookup, counted
        lookups.append(1)
        return producer

    monkeypatch.setattr(topic, "_get_producer", get_producer)
    assert await topic.send(key=b"k", value=b"1") == "future"
    assert await topic.send(key=b"k", value=b"2") == "future"
    assert len(lookups) == 1
    producer.started = False  # stopped (shutdown, restart): ask Faust again
    await topic.send(key=b"k", value=b"3")
    assert len(lookups) == 2
    assert producer.sent == [("out", b"1"), ("out", b"2"), ("out", b"3")]

    # A transactional app gets Faust's transaction manager: never kept.
    monkeypatch.setattr(type(app), "in_transaction", property(lambda self: True))
    fresh = app.topic("out2", key_serializer="raw", value_serializer="raw")
    monkeypatch.setattr(fresh, "_get_producer", get_producer)
    await fresh.send(value=b"4")
    await fresh.send(value=b"5")
    assert len(lookups) == 4


async def test_the_producer_buffer_waits_only_when_full(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from guardstream.app import create_app
    from guardstream.faust_tuning import _ProducerBuffer
    from guardstream.settings import Settings

    app = create_app(Settings.from_env({}), "ratelimit")
    buffer = app.producer.buffer
    assert isinstance(buffer, _ProducerBuffer)
    flushed: list[int] = []

    async def flush_atmost(n: int) -> int:
        flushed.append(n)
        return n

    monkeypatch.setattr(buffer, "flush_atmost", flush_atmost)
    await buffer.wait_until_ebb()
    assert flushed == []
    for _ in range(buffer.max_messages + 1):
        buffer.pending.put_nowait(object())
    await buffer.wait_until_ebb()
    assert flushed == [buffer.max_messages]


class _Batch:
    """What `getmany` reads from the consumer: one fetched batch and its surroundings."""

    def __init__(self, records: dict[Any, list[int]], *, active: set[Any] | None = None,
                 flow_active: bool = True) -> None:
        from faust.transport.utils import DefaultSchedulingStrategy

        self.records, self.active, self.flow_active = records, active, flow_active
        self.generation_id = 1
        self.highwater_reads: list[Any] = []
        self.tracked: dict[Any, int] = {}
        self.seeks = 0
        self.scheduler: Any = DefaultSchedulingStrategy()  # type: ignore[abstract]

    def consumer(self, cls: type) -> Any:
        batch = self
        consumer: Any = object.__new__(cls)
        consumer._stopped, consumer._crashed = Event(), Event()
        consumer.flow_active = self.flow_active
        consumer._buffered_partitions = set()
        consumer.log = type("Log", (), {"dev": staticmethod(lambda *args: None)})()
        consumer.scheduler = self.scheduler
        consumer.app = type("App", (), {
            "consumer_generation_id": property(lambda app: batch.generation_id),
            "monitor": type("Monitor", (), {"track_tp_end_offset": staticmethod(
                lambda tp, offset: batch.tracked.__setitem__(tp, offset))})()})()

        async def wait_next_records(timeout: float) -> tuple[Any, Any]:
            return self.records, self.active

        def highwater(tp: Any) -> int:
            self.highwater_reads.append(tp)
            return 100 + tp.partition

        async def perform_seek() -> None:
            self.seeks += 1

        consumer._wait_next_records = wait_next_records
        consumer.highwater = highwater
        consumer.perform_seek = perform_seek
        consumer._to_message = lambda tp, record: (tp.topic, tp.partition, record)
        return consumer


async def _drain(consumer: Any, on_record: Any = None) -> list[Any]:
    out = []
    async for tp, message in consumer.getmany(1.0):
        out.append((tp, message))
        if on_record is not None:
            on_record(len(out))
    return out


def _tps() -> tuple[Any, Any, Any]:
    from faust.types import TP

    return TP("a", 0), TP("a", 1), TP("b", 0)


@pytest.mark.parametrize("active", [None, "first two"])
async def test_getmany_yields_what_fausts_yields_reading_each_high_water_mark_once(
        active: str | None) -> None:
    from faust.transport.drivers.aiokafka import Consumer as FaustConsumer

    a0, a1, b0 = _tps()
    records = {a0: [1, 2, 3], a1: [7, 8], b0: [4, 5, 6, 9]}
    partitions = None if active is None else {a0, a1}
    ours, faust_batch = _Batch(records, active=partitions), _Batch(records, active=partitions)
    got = await _drain(ours.consumer(_Consumer))
    expected = await _drain(faust_batch.consumer(FaustConsumer))
    assert got == expected  # same records, same round-robin order
    assert len(got) == (9 if active is None else 5)
    assert sorted(ours.highwater_reads) == sorted(records)  # once per partition, not per record
    assert len(faust_batch.highwater_reads) == len(expected)  # Faust: once per record
    assert ours.tracked == {a0: 100, a1: 101, b0: 100}


async def test_getmany_stops_when_the_generation_changes_or_the_flow_stops() -> None:
    from faust.transport.drivers.aiokafka import Consumer as FaustConsumer

    a0, a1, b0 = _tps()
    records = {a0: [1, 2, 3], a1: [7, 8], b0: [4, 5, 6]}
    for cls in (_Consumer, FaustConsumer):
        batch = _Batch(records)
        consumer = batch.consumer(cls)

        def rebalance(n: int, batch: _Batch = batch) -> None:
            if n == 2:
                batch.generation_id = 2
        assert len(await _drain(consumer, on_record=rebalance)) == 2, cls

        batch = _Batch(records)
        consumer = batch.consumer(cls)

        def suspend(n: int, consumer: Any = consumer) -> None:
            if n == 4:
                consumer.flow_active = False
        assert len(await _drain(consumer, on_record=suspend)) == 4, cls


async def test_getmany_seeks_back_instead_of_yielding_while_the_flow_is_stopped() -> None:
    a0, _, _ = _tps()
    batch = _Batch({a0: [1, 2]}, flow_active=False)
    assert await _drain(batch.consumer(_Consumer)) == []
    assert batch.seeks == 1
    assert batch.highwater_reads == []


async def test_the_stage_app_takes_fausts_cython_fast_paths() -> None:
    # Opt-in in faust-streaming 0.15: the stream iterator takes records already queued
    # without awaiting the channel (docs/performance.md, seventh round).
    from guardstream.app import create_app
    from guardstream.settings import Settings

    assert create_app(Settings.from_env({}), "validate").conf.cython_optimizations is True


class _FakeKafkaProducer:
    """Stands in for aiokafka's producer under the Faust producer."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, topic: str, value: bytes | None, *, key: bytes | None,
                   partition: int | None, timestamp_ms: int | None, headers: Any) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append((topic, key, value, partition, timestamp_ms, headers))
        return "ack-future"


def _stage_producer(kafka: _FakeKafkaProducer) -> Any:
    from guardstream.app import create_app
    from guardstream.faust_tuning import _Producer
    from guardstream.settings import Settings

    app = create_app(Settings.from_env({}), "validate")
    producer = app.producer
    assert isinstance(producer, _Producer)
    producer._producer = kafka
    return app, producer


async def test_the_producer_sends_as_faust_does_without_the_signal_dispatch() -> None:
    kafka = _FakeKafkaProducer()
    _, producer = _stage_producer(kafka)
    future = await producer.send("out", b"k", b"v", 1, 1.5, {"h": b"1"})
    assert future == "ack-future"
    await producer.send("out", None, b"w", None, None, [("h", b"2")])
    assert kafka.sent == [("out", b"k", b"v", 1, 1500, [("h", b"1")]),
                          ("out", None, b"w", None, None, [("h", b"2")])]


async def test_the_producer_translates_kafka_errors_as_faust_does() -> None:
    from aiokafka.errors import KafkaTimeoutError
    from faust.exceptions import ProducerSendError

    _, producer = _stage_producer(_FakeKafkaProducer(error=KafkaTimeoutError()))
    with pytest.raises(ProducerSendError, match="KafkaTimeoutError"):
        await producer.send("out", b"k", b"v", None, None, None)


async def test_a_produce_message_receiver_still_sees_every_send() -> None:
    kafka = _FakeKafkaProducer()
    app, producer = _stage_producer(kafka)
    seen: list[Any] = []

    def on_produce(sender: Any, key: Any = None, value: Any = None, **kwargs: Any) -> None:
        seen.append((key, value))

    app.on_produce_message.connect(on_produce)
    await producer.send("out", b"k", b"v", None, None, None)
    assert seen == [(b"k", b"v")]
    assert kafka.sent == [("out", b"k", b"v", None, None, None)]


async def test_transactional_sends_take_fausts_path() -> None:
    from faust.exceptions import ProducerSendError

    kafka = _FakeKafkaProducer()
    _, producer = _stage_producer(kafka)
    with pytest.raises(ProducerSendError, match="No transaction producer"):
        await producer.send("out", b"k", b"v", None, None, None, transactional_id="tx-1")
    assert kafka.sent == []
