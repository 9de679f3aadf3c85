"""The bench reads results the way `GuardstreamClient` does."""

from __future__ import annotations

from typing import Any

import pytest

from guardstream.bench.pipeline_run import run_pipeline


class _Stop(Exception):
    """Raised by the stand-in consumer once it has seen its arguments."""


async def test_the_results_reader_uses_the_configured_fetch_wait(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Otherwise aiokafka's 500 ms default would be in every end-to-end latency it reports."""
    import aiokafka

    seen: list[dict[str, Any]] = []

    def consumer(*topics: str, **kwargs: Any) -> None:
        seen.append(kwargs)
        raise _Stop

    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", consumer)
    monkeypatch.setenv("GUARDSTREAM_FETCH_MAX_WAIT_MS", "40")
    with pytest.raises(_Stop):
        await run_pipeline("127.0.0.1:1", "bench", [], rate=0)
    assert [kwargs["fetch_max_wait_ms"] for kwargs in seen] == [40]
