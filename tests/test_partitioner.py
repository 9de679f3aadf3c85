"""The faster key partitioning picks exactly the partitions aiokafka's default would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiokafka
import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardstream.faust_tuning import _Producer
from guardstream.partitioner import KeyPartitionedProducer, murmur2


@given(st.binary(max_size=200))
@settings(max_examples=2000)
def test_murmur2_equals_the_java_clients(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@pytest.mark.parametrize(("data", "expected"), [
    # Values of the Java client's Utils.murmur2 (kafka-clients UtilsTest.testMurmur2).
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_matches_kafkas_published_values(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected & 0xFFFFFFFF


class _Metadata:
    """The two lookups `_partition` makes of the cluster metadata."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)


@pytest.fixture
async def producers() -> AsyncIterator[tuple[Any, Any]]:
    """Ours and aiokafka's, never started, over the same fake metadata."""
    metadata = _Metadata({f"t{n}": set(range(n)) for n in (1, 2, 3, 4, 7, 12, 64)})
    ours = KeyPartitionedProducer(bootstrap_servers="127.0.0.1:1")
    theirs = aiokafka.AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    for producer in (ours, theirs):
        producer._metadata = metadata
    yield ours, theirs
    for producer in (ours, theirs):
        await producer.stop()  # closes the client it made (never connected)


@given(key=st.binary(min_size=0, max_size=80),
       topic=st.sampled_from(["t1", "t2", "t3", "t4", "t7", "t12", "t64"]))
@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # read-only fixture
def test_keyed_records_land_where_aiokafka_puts_them(
        producers: tuple[Any, Any], key: bytes, topic: str) -> None:
    ours, theirs = producers
    assert (ours._partition(topic, None, key, b"v", key, b"v")
            == theirs._partition(topic, None, key, b"v", key, b"v"))


def test_unkeyed_explicit_and_unknown_topics_take_aiokafkas_path(
        producers: tuple[Any, Any]) -> None:
    ours, _ = producers
    assert ours._partition("t4", 3, b"k", b"v", b"k", b"v") == 3  # explicit partition
    assert ours._partition("t4", None, None, b"v", None, b"v") in range(4)  # random choice
    with pytest.raises(TypeError):  # aiokafka's own failure for a topic it knows nothing of
        ours._partition("unknown", None, b"k", b"v", b"k", b"v")


def test_a_custom_partitioner_is_honoured(producers: tuple[Any, Any]) -> None:
    ours, _ = producers
    ours._partitioner = lambda key, all_partitions, available: all_partitions[-1]
    assert ours._partition("t12", None, b"k", b"v", b"k", b"v") == 11


def test_the_gateways_producer_is_the_key_partitioned_one() -> None:
    assert _Producer._producer_type.fget(None) is KeyPartitionedProducer  # type: ignore[attr-defined]
