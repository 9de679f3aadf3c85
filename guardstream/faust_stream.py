"""A Faust stream whose per-record iteration does what Faust's does, in fewer layers.

Faust's (Cython) stream iterator hands every record through a coroutine of its own
(`StreamIterator.next`), an ABC `isinstance` check, a tuple per step and an awaited
`on_merge` coroutine that only matters for joins. On the 7-hop pass-through chain that
was ~15% of a Faust hop's CPU (docs/performance.md, eleventh round). `LeanStream`
iterates a topic's queue directly and keeps Faust's semantics record for record: a yield
to the event loop before each record, stale records of an old assignment skipped, acks
taken by Faust's own `StreamIterator.after`, sensors called, processors run.

Streams over anything else (a plain channel, an iterable, a join) use Faust's iterator.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import faust
from faust.exceptions import Skip
from faust.streams import _current_event
from mode.utils.futures import maybe_async

try:  # faust-streaming ships it compiled; the pure-Python install has no fast path
    from faust._cython.streams import StreamIterator
except ImportError:  # pragma: no cover
    StreamIterator = None

__all__ = ["LeanStream"]


class LeanStream(faust.Stream):
    """`faust.Stream` with a direct iterator over a topic's queue (see the module docs)."""

    def __aiter__(self) -> AsyncIterator[Any]:
        if (StreamIterator is None or self.join_strategy is not None
                or not isinstance(self.channel, faust.Topic)
                or type(self).on_merge is not faust.Stream.on_merge):
            return super().__aiter__()
        iterator = self._lean_aiter()
        self._active_agens.add(iterator)  # closed by on_stop if the caller abandons it
        return iterator

    async def _lean_aiter(self) -> AsyncGenerator[Any, None]:
        self._finalized = True
        started_by_aiter = await self.maybe_start()
        after = StreamIterator(self).after  # Faust's ack bookkeeping, unchanged
        channel: Any = self.channel
        queue = channel.queue
        queued = queue._queue  # asyncio.Queue's deque: a truth test instead of two calls
        get_nowait = queue.get_nowait
        get = channel.__anext__
        app = self.app
        flow_active = app.flow_control.is_active
        acking_topics = app.topics.acking_topics
        add_unacked = app.consumer.unacked.add
        on_message_in = self._on_message_in
        on_event_in = self._on_stream_event_in
        processors = self._processors
        stopped, crashed = self._stopped.is_set, self._crashed.is_set  # `should_stop`
        set_current = _current_event.set
        sleep = asyncio.sleep
        try:
            while not (stopped() or crashed()):
                do_ack = self.enable_acks
                await sleep(0)  # as Faust: an agent that never awaits still lets others run
                event = get_nowait() if queued else await get()
                message = event.message
                if not flow_active() or message.generation_id != app.consumer_generation_id:
                    continue  # a record of an earlier assignment: Faust neither yields nor acks it
                tp = message.tp
                offset = message.offset
                if not message.tracked and message.topic in acking_topics:
                    message.tracked = True
                    add_unacked(message)
                    on_message_in(tp, offset, message)
                sensor_state = on_event_in(tp, offset, self, event)
                self.current_event = event
                set_current(weakref.ref(event))
                value = event.value
                if processors:
                    try:
                        for processor in processors:
                            value = await maybe_async(processor(value))
                    except Skip:
                        self.current_event = None
                        after(event, True, sensor_state)
                        continue
                self.events_total += 1
                try:
                    yield value
                finally:
                    event, self.current_event = self.current_event, None
                    after(event, do_ack, sensor_state)
        except StopAsyncIteration:
            return
        finally:
            self._channel_stop_iteration(channel)
            if started_by_aiter:
                await self.stop()
                self.service_reset()
