"""`LeanStream` iterates a topic's records as Faust's stream does, record for record.

Each scenario runs through Faust's own iterator and through `LeanStream` on an app that
never connects (records are put in the topic's queue as the conductor puts them); the
values, current events, acks and counters must match, and match what is expected.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from faust.exceptions import Skip
from faust.types import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from guardstream.faust_stream import LeanStream

_names = itertools.count()
STALE = "stale"


@dataclass
class Trace:
    """What an agent saw: per value, the current event's offset and the offsets acked so far."""

    seen: list[tuple[Any, int, list[int]]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    events_total: int = 0


def _app(stream_cls: type) -> faust.App:
    app = faust.App(f"gs-test-stream-{next(_names)}", broker="kafka://127.0.0.1:1",
                    Stream=stream_cls)  # the consumer object exists; it never connects
    app.flow_control.resume()
    app.topics._acking_topics.add("t")  # type: ignore[attr-defined]
    return app


async def _put(app: faust.App, stream: Any, topic: Any, offset: int, value: bytes,
               *, stale: bool = False) -> None:
    generation = app.consumer_generation_id - 1 if stale else app.consumer_generation_id
    message = Message("t", 0, offset, 0.0, 0, [], b"k", value, None,
                      generation_id=generation)
    message.incref(1)  # as the conductor does for its one channel
    await stream.channel.queue.put(await topic.decode(message))


async def _run(stream_cls: type, values: list[bytes | str], *,
               processors: tuple[Any, ...] = (), acks: bool = True) -> Trace:
    app = _app(stream_cls)
    topic = app.topic("t", key_serializer="raw", value_serializer="raw")
    stream: Any = app.stream(topic, processors=list(processors))
    stream.enable_acks = acks
    consumer: Any = app.consumer
    for offset, value in enumerate(values):
        await _put(app, stream, topic, offset,
                   value if isinstance(value, bytes) else b"stale", stale=value == STALE)
    await _put(app, stream, topic, len(values), b"end")
    trace = Trace()
    async for value in stream:
        event = stream.current_event
        assert event is not None
        if event.message.offset == len(values):  # the end marker
            break
        assert faust.current_event() is event
        trace.seen.append((value, event.message.offset, sorted(consumer._acked[event.message.tp])))
    tp = next(iter(consumer._acked), None)
    trace.acked = sorted(consumer._acked[tp]) if tp is not None else []
    trace.events_total = stream.events_total
    return trace


def _double(value: bytes) -> bytes:
    return value * 2


def _skip_b(value: bytes) -> bytes:
    if value.startswith(b"b"):
        raise Skip()
    return value


CASES: list[tuple[str, list[bytes | str], dict[str, Any], Trace]] = [
    ("records in order, each acked when the next is asked for",
     [b"a", b"b", b"c"], {},
     Trace([(b"a", 0, []), (b"b", 1, [0]), (b"c", 2, [0, 1])], [0, 1, 2], 4)),
    ("a record of an earlier assignment is neither yielded nor acked",
     [b"a", STALE, b"c"], {},
     Trace([(b"a", 0, []), (b"c", 2, [0])], [0, 2], 3)),
    ("processors transform the value",
     [b"a", b"b"], {"processors": (_double,)},
     Trace([(b"aa", 0, []), (b"bb", 1, [0])], [0, 1], 3)),
    ("a processor's Skip acks the record without yielding it",
     [b"a", b"b1", b"c"], {"processors": (_skip_b,)},
     Trace([(b"a", 0, []), (b"c", 2, [0, 1])], [0, 1, 2], 3)),
    ("a stream without acks acks nothing",
     [b"a", b"b"], {"acks": False},
     Trace([(b"a", 0, []), (b"b", 1, [])], [], 3)),
]


@pytest.mark.parametrize(("name", "values", "options", "expected"), CASES,
                         ids=[case[0] for case in CASES])
async def test_lean_iteration_matches_fausts(name: str, values: list[bytes | str],
                                            options: dict[str, Any], expected: Trace) -> None:
    faust_trace = await _run(faust.Stream, values, **options)
    lean_trace = await _run(LeanStream, values, **options)
    assert lean_trace == expected
    assert faust_trace == expected  # the table is Faust's behaviour, not ours alone


async def test_topics_take_the_lean_iterator_and_other_sources_fausts() -> None:
    app = _app(LeanStream)
    stream = app.stream(app.topic("t", value_serializer="raw"))
    iterator = stream.__aiter__()
    try:
        assert getattr(iterator, "__qualname__", "") == "LeanStream._lean_aiter"
    finally:
        await iterator.aclose()  # type: ignore[attr-defined]
    values = [value async for value in app.stream([1, 2, 3])]
    assert values == [1, 2, 3]


async def test_an_agent_that_never_awaits_still_lets_other_tasks_run() -> None:
    app = _app(LeanStream)
    topic = app.topic("t", key_serializer="raw", value_serializer="raw")
    stream = app.stream(topic)
    for offset in range(50):
        await _put(app, stream, topic, offset, b"x")
    ticks: list[int] = []

    async def other() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    ticks.clear()
    records = 0
    async for _ in stream:  # no await in the body
        records += 1
        if records == 50:
            break
    task.cancel()
    assert len(ticks) >= 49  # a loop round before every record, as in Faust


async def test_the_stage_app_iterates_with_the_lean_stream() -> None:
    from guardstream.app import create_app
    from guardstream.settings import Settings

    app = create_app(Settings.from_env({}), "validate")
    assert app.conf.Stream is LeanStream
    assert isinstance(app.stream(app.topic("t")), LeanStream)


_RECORDS = st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", b"bx"]), st.booleans()),
                    max_size=12)


@settings(max_examples=60, deadline=None)
@given(records=_RECORDS, skip=st.booleans(), acks=st.booleans())
def test_any_sequence_of_records_iterates_as_in_faust(
        records: list[tuple[bytes, bool]], skip: bool, acks: bool) -> None:
    values: list[bytes | str] = [STALE if stale else value for value, stale in records]
    options: dict[str, Any] = {"processors": (_skip_b,) if skip else (), "acks": acks}
    lean = asyncio.run(_run(LeanStream, values, **options))
    assert lean == asyncio.run(_run(faust.Stream, values, **options))
    live = [(offset, value) for offset, value in enumerate(values) if value != STALE]
    shown = [(offset, value) for offset, value in live
             if not (skip and isinstance(value, bytes) and value.startswith(b"b"))]
    assert [(offset, value) for value, offset, _ in lean.seen] == shown
    skipped = [offset for offset, value in live if (offset, value) not in shown]
    # as Faust: a record a processor skips is acked even on a stream without acks
    assert lean.acked == ([offset for offset, _ in live] if acks else skipped)


async def test_a_stream_waiting_on_an_empty_topic_gets_the_next_record() -> None:
    app = _app(LeanStream)
    topic = app.topic("t", key_serializer="raw", value_serializer="raw")
    stream: Any = app.stream(topic)

    async def first() -> tuple[bytes, int]:
        async for value in stream:
            return value, stream.current_event.message.offset
        raise AssertionError("the stream ended")

    waiting = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # nothing queued yet: it waits on the channel
    await _put(app, stream, topic, 7, b"late")
    assert await asyncio.wait_for(waiting, 5) == (b"late", 7)
