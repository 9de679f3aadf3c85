"""Offsets are never committed past a record still in flight (Faust's head-gap bug)."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from intervaltree import IntervalTree

from guardstream.faust_tuning import InFlight, _Consumer

TP0 = TP("guardstream.stage.redact", 0)


def _consumer(committed: int | None, acked: list[int], inflight: InFlight) -> _Consumer:
    consumer = object.__new__(_Consumer)
    consumer._acked = defaultdict(list, {TP0: list(acked)})
    consumer._acked_index = defaultdict(set, {TP0: set(acked)})
    consumer._committed_offset = defaultdict(lambda: None, {TP0: committed})
    consumer._gap = defaultdict(IntervalTree)
    consumer.__dict__["app"] = SimpleNamespace(guardstream_inflight=inflight)
    return consumer


def test_faust_alone_commits_past_a_record_in_flight() -> None:
    # The bug this guards against: committed=5 (next to read), 5 still running, 6-7 acked.
    plain = _consumer(5, [6, 7], InFlight())
    assert FaustConsumer._new_offset(plain, TP0) == 8


@pytest.mark.parametrize(("committed", "acked", "in_flight", "expected"), [
    (5, [6, 7], {5}, None),            # the off-by-one head gap
    (5, [6, 7], set(), None),          # record 5 read but not acked, not tracked either
    (None, [1, 2], {0}, None),         # before a partition's first commit
    (5, [5, 6], {8}, 7),               # commits up to the record in flight
    (5, [5, 6, 7], set(), 8),          # nothing in flight: everything acked
    (None, [0, 1], set(), 2),
    (5, [5, 6, 7], {5}, None),         # acked by Faust's finally on shutdown, not done
    (5, [5, 6, 7], {6}, 6),            # an interrupted record in the middle of the run
    (5, [5, 6, 8], set(), 7),          # a gap: commit up to it
])
def test_commit_never_passes_the_lowest_offset_in_flight(
        committed: int | None, acked: list[int], in_flight: set[int],
        expected: int | None) -> None:
    inflight = InFlight()
    for offset in in_flight:
        inflight.add(TP0, offset)
    assert _consumer(committed, acked, inflight)._new_offset(TP0) == expected


def test_in_flight_tracking() -> None:
    inflight = InFlight()
    inflight.add(TP0, 3)
    inflight.add(TP0, 4)
    assert inflight.floor(TP0) == 3
    inflight.done(TP0, 3)
    assert inflight.floor(TP0) == 4
    inflight.forget([TP0])
    assert inflight.floor(TP0) is None
