"""A circuit breaker per upstream: stop calling a provider that keeps failing.

Why: when the provider is down, every request would otherwise wait out its timeout and
retries, holding a consumer slot for tens of seconds and piling load on a struggling
service. After `failure_threshold` consecutive failed attempts (5xx, timeouts, connection
errors) the breaker opens and calls fail at once with `upstream_unavailable`; after
`reset_seconds` one trial call is let through (half-open) and its outcome closes or
re-opens the breaker. Any HTTP answer below 500 (a 429 included) proves the upstream
alive and counts as a success here: rate limits are handled by backoff, not by the breaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerRegistry", "BreakerState", "CircuitBreaker"]

log = logging.getLogger("guardstream.llm.breaker")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker; single event loop, so no locking is needed."""

    def __init__(self, name: str, *, failure_threshold: int = 5, reset_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial call at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until a trial call may go out (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_seconds - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.warning("circuit to %s closed again", self.name)
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial_in_flight or (self._opened_at is None
                                     and self._failures >= self.failure_threshold):
            if self._opened_at is None:
                log.warning("circuit to %s opened after %d consecutive failures", self.name,
                            self._failures)
            self._opened_at = self._clock()
        self._trial_in_flight = False

    def release(self) -> None:
        """A call ended without telling anything about the upstream (cancelled)."""
        self._trial_in_flight = False


class BreakerRegistry:
    """One breaker per upstream (base URL), shared by every client of one process."""

    def __init__(self, *, failure_threshold: int, reset_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failure_threshold
        self._reset = reset_seconds
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, upstream: str) -> CircuitBreaker:
        breaker = self._breakers.get(upstream)
        if breaker is None:
            breaker = CircuitBreaker(upstream, failure_threshold=self._threshold,
                                     reset_seconds=self._reset, clock=self._clock)
            self._breakers[upstream] = breaker
        return breaker
