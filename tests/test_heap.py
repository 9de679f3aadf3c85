"""`settle_heap`: start-up garbage is collected, what lives on is frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from guardstream.heap import settle_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_live_objects_are_frozen_and_garbage_cycles_are_freed() -> None:
    kept = _Node()
    kept.other = _Node()
    kept.other.other = kept
    dropped = _Node()
    dropped.other = _Node()
    dropped.other.other = dropped  # a cycle: only a collection frees it
    gone = weakref.ref(dropped)
    del dropped
    assert gc.get_freeze_count() == 0
    frozen = settle_heap()
    assert gone() is None
    assert frozen == gc.get_freeze_count() > 0
    tracked = {id(obj) for obj in gc.get_objects()}
    assert id(kept) not in tracked  # in the permanent generation, out of every pass


def test_objects_made_after_the_freeze_are_still_collected() -> None:
    settle_heap()
    late = _Node()
    late.other = _Node()
    late.other.other = late
    gone = weakref.ref(late)
    del late
    gc.collect()
    assert gone() is None
