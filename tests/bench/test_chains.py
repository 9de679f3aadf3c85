"""The benchmark's pass-through chains, run for real on the embedded broker.

The README's hop ratio comes from these two processes; if a chain dropped records, never
became ready or read its CPU from the wrong process, the ratio would be fiction.
"""

from __future__ import annotations

import pytest

from guardstream.bench.chainrun import run_chain
from guardstream.embedded.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["raw", "faust"])
def test_a_chain_moves_every_record_through_every_hop(broker: EmbeddedBroker,
                                                      kind: str) -> None:
    # run_chain raises TimeoutError unless the last topic holds warm-up + timed records.
    result = run_chain(kind, broker.url.removeprefix("kafka://"), hops=3, records=500,
                       warmup=10, timeout=60.0)
    assert (result.kind, result.hops, result.records) == (kind, 3, 500)
    assert result.seconds > 0
    assert result.cpu_seconds > 0  # read from the chain's own process, which did the work
    assert 0 < result.cpu_ms_per_hop < 50
    assert result.rss_bytes > 10 * 2**20  # a Python process with aiokafka loaded
