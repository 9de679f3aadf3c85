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
