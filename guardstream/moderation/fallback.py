"""What happens when the online backend fails: fall back to local, fail closed, fail open.

A small circuit breaker sits in front of the online backend: once it has failed
`breaker_failures` times in a row, requests skip it for `breaker_reset_seconds` (cause
`circuit_open`) instead of each paying the timeout and retries of a provider that is down.
After that one request tries it again; a success closes the breaker.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal

from guardstream.moderation.base import (
    ModerationBackend,
    ModerationOutcome,
    ModerationUnavailable,
)

__all__ = ["Breaker", "FallbackBackend", "FallbackMode"]

log = logging.getLogger("guardstream.moderation")

FallbackMode = Literal["local", "fail_closed", "fail_open"]


class Breaker:
    """Consecutive-failure circuit breaker (not thread-safe; one event loop owns it)."""

    def __init__(self, failures: int, reset_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = failures
        self._reset = reset_seconds
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None

    @property
    def is_open(self) -> bool:
        return self._open_until is not None and self._clock() < self._open_until

    def success(self) -> None:
        self._failures = 0
        self._open_until = None

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self._limit:
            if not self.is_open:
                log.warning("moderation breaker open for %.0f s after %d failures",
                            self._reset, self._failures)
            self._open_until = self._clock() + self._reset


class FallbackBackend:
    """Wraps an online backend with the policy's answer to its failures.

    `local`: the outcomes come from `fallback` and carry `degraded=<cause>`.
    `fail_open`: unchecked outcomes (nothing flagged) carrying the cause.
    `fail_closed`: `ModerationUnavailable` propagates, and the caller ends the request.
    """

    def __init__(self, primary: ModerationBackend, mode: FallbackMode, *,
                 fallback: ModerationBackend | None = None,
                 breaker: Breaker | None = None) -> None:
        if mode == "local" and fallback is None:
            raise ValueError("fallback mode 'local' needs a fallback backend")
        self._primary = primary
        self._mode = mode
        self._fallback = fallback
        self._breaker = breaker or Breaker(failures=5, reset_seconds=30.0)
        self.name = primary.name

    @property
    def mode(self) -> FallbackMode:
        return self._mode

    async def moderate(self, texts: Sequence[str]) -> list[ModerationOutcome]:
        if not texts:
            return []
        if self._breaker.is_open:
            cause = "circuit_open"
        else:
            try:
                outcomes = await self._primary.moderate(texts)
            except ModerationUnavailable as exc:
                self._breaker.failure()
                cause = exc.cause
            else:
                self._breaker.success()
                return outcomes
        if self._mode == "local" and self._fallback is not None:
            scored = await self._fallback.moderate(texts)
            return [dataclasses.replace(o, degraded=cause) for o in scored]
        if self._mode == "fail_open":
            return [ModerationOutcome.unchecked(cause) for _ in texts]
        raise ModerationUnavailable(cause)

    async def aclose(self) -> None:
        await self._primary.aclose()
        if self._fallback is not None:
            await self._fallback.aclose()
