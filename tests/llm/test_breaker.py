"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

import pytest

from guardstream.llm.breaker import BreakerRegistry, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker("u", failure_threshold=3, reset_seconds=10, clock=Clock())
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()  # resets the count
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


@pytest.mark.parametrize(("trial_succeeds", "final"), [
    (True, BreakerState.CLOSED),
    (False, BreakerState.OPEN),
])
def test_half_open_lets_one_trial_through(trial_succeeds: bool, final: BreakerState) -> None:
    clock = Clock()
    breaker = CircuitBreaker("u", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now = 4
    assert breaker.retry_after() == pytest.approx(6)
    clock.now = 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # a second caller waits for the trial's outcome
    if trial_succeeds:
        breaker.record_success()
    else:
        breaker.record_failure()
    assert breaker.state is final
    assert breaker.allow() is trial_succeeds
    if not trial_succeeds:
        assert breaker.retry_after() == pytest.approx(10)  # a fresh open period


def test_released_trial_lets_the_next_caller_try() -> None:
    clock = Clock()
    breaker = CircuitBreaker("u", failure_threshold=1, reset_seconds=1, clock=clock)
    breaker.record_failure()
    clock.now = 2
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_registry_has_one_breaker_per_upstream() -> None:
    registry = BreakerRegistry(failure_threshold=1, reset_seconds=5)
    a = registry.get("http://a/v1")
    assert registry.get("http://a/v1") is a
    a.record_failure()
    assert not a.allow()
    assert registry.get("http://b/v1").allow()
