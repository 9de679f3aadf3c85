"""Backoff with full jitter and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from guardstream.llm.retry import backoff_delay, retry_after_seconds


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0),
                                                  (4, 8.0), (10, 8.0)])
def test_backoff_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff_delay(attempt, base=0.5, cap=8.0, rand=lambda lo, hi: hi) == ceiling
    assert backoff_delay(attempt, base=0.5, cap=8.0, rand=lambda lo, hi: lo) == 0.0


def test_backoff_is_jittered_over_the_whole_window() -> None:
    delays = [backoff_delay(3, base=0.5, cap=8.0) for _ in range(400)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert min(delays) < 1.0 and max(delays) > 3.0  # full jitter, not "cap ± a little"


NOW = 1_700_000_000.0


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "3"}, 3.0),
    ({"retry-after": "0.25"}, 0.25),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # OpenAI's finer header wins
    ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 42, UTC), usegmt=True)},
     42.0),
    ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW - 42, UTC), usegmt=True)},
     0.0),
    ({"Retry-After": "soon"}, None),
    ({"Retry-After": "-1"}, None),
    ({"Retry-After": "nan"}, None),
    ({"retry-after-ms": "garbage"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    value = retry_after_seconds(headers, now=lambda: NOW)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, abs=1.0 if expected > 1 else 1e-9)
