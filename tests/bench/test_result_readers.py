"""The bench's readers fetch the way `GuardstreamClient` and the stage workers do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from guardstream.bench.chainrun import _push_through
from guardstream.bench.pipeline_run import run_pipeline


class _Stop(Exception):
    """Raised by the stand-in consumer once it has seen its arguments."""


@pytest.mark.parametrize("start", [
    lambda: run_pipeline("127.0.0.1:1", "bench", [], rate=0),
    lambda: _push_through("127.0.0.1:1", "chain.0", "chain.7", records=1, wait_s=1.0),
], ids=["pipeline results", "end of a chain"])
async def test_the_reader_uses_the_configured_fetch_wait(
        monkeypatch: pytest.MonkeyPatch, start: Callable[[], Awaitable[object]]) -> None:
    """With aiokafka's 500 ms default the embedded broker held the last records up to half
    a second: in every end-to-end latency, and in a chain's seconds and CPU."""
    import aiokafka

    seen: list[dict[str, Any]] = []

    def consumer(*topics: str, **kwargs: Any) -> None:
        seen.append(kwargs)
        raise _Stop

    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", consumer)
    monkeypatch.setenv("GUARDSTREAM_FETCH_MAX_WAIT_MS", "40")
    with pytest.raises(_Stop):
        await start()
    assert [kwargs["fetch_max_wait_ms"] for kwargs in seen] == [40]
