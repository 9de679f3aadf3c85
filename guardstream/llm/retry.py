"""Backoff with full jitter and the provider's Retry-After, for the client's retry loop.

Why full jitter (a uniform delay between 0 and the exponential cap): after an outage,
every worker retries at once; spreading retries over the whole window lets the provider
recover instead of meeting synchronized waves (AWS Architecture Blog, "Exponential Backoff
And Jitter").
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

__all__ = ["backoff_delay", "retry_after_seconds"]

_jitter = random.SystemRandom()


def backoff_delay(attempt: int, *, base: float, cap: float,
                  rand: Callable[[float, float], float] = _jitter.uniform) -> float:
    """Delay before retry number `attempt` (0-based): uniform in [0, min(cap, base*2^n)]."""
    ceiling = min(cap, base * (2 ** max(0, attempt)))
    return rand(0.0, ceiling) if ceiling > 0 else 0.0


def retry_after_seconds(headers: Mapping[str, str] | None, *,
                        now: Callable[[], float] = time.time) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms` (OpenAI), then
    `retry-after` as seconds or an HTTP date. None when absent or unparsable."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = -1.0
        if math.isfinite(value) and value >= 0:
            return value
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - now())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
