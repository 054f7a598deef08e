"""Retries with backoff, the circuit breaker and the short cache (services/kernel/resilience.py), on fake time."""

from __future__ import annotations

import random

import pytest

from services.kernel.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    TtlCache,
    backoff_s,
    retrying,
)


class Pauses:
    """A sleep that only writes down how long it was asked to wait."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


@pytest.fixture
def jitter_windows(monkeypatch) -> list[tuple[float, float]]:
    """The (low, high) of every jittered pause; each pause is the middle of its window."""
    windows: list[tuple[float, float]] = []

    def middle(low: float, high: float) -> float:
        windows.append((low, high))
        return (low + high) / 2

    monkeypatch.setattr(random, "uniform", middle)
    return windows


def failing(times: int, retry_after_s: float | None = None):
    calls = {"n": 0}

    async def call() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise Retryable(f"HTTP 503 #{calls['n']}", retry_after_s)
        return "answer"

    return call, calls


async def test_a_call_that_fails_twice_is_answered_on_the_third_attempt_after_growing_jittered_pauses(
    jitter_windows,
):
    call, _ = failing(2)
    pauses = Pauses()

    result, attempts = await retrying(call, RetryPolicy(attempts=3, base_s=1.0, cap_s=10.0), pauses)

    assert (result, attempts) == ("answer", 3)
    assert jitter_windows == [(0, 1.0), (0, 2.0)]  # full jitter: anywhere from 0 to 1 s, then to 2 s
    assert pauses.taken == [0.5, 1.0]


async def test_the_backoff_grows_no_longer_than_its_cap(jitter_windows):
    call, _ = failing(4)

    await retrying(call, RetryPolicy(attempts=5, base_s=1.0, cap_s=3.0), Pauses())

    assert [high for _, high in jitter_windows] == [1.0, 2.0, 3.0, 3.0]


def test_a_loop_that_must_go_on_waits_longer_after_each_failure_up_to_its_cap():
    assert [backoff_s(n, cap_s=1.0) for n in (1, 2, 3, 4, 50)] == [0.2, 0.4, 0.8, 1.0, 1.0]


async def test_retry_after_is_honoured_as_the_least_pause():
    call, _ = failing(1, retry_after_s=7)
    pauses = Pauses()

    await retrying(call, RetryPolicy(attempts=2, base_s=0.1), pauses)

    assert pauses.taken == [7]


async def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it(jitter_windows):
    call, _ = failing(1, retry_after_s=0)
    pauses = Pauses()

    await retrying(call, RetryPolicy(attempts=2, base_s=4.0), pauses)

    assert pauses.taken == [2.0]


async def test_a_retry_after_longer_than_allowed_is_not_waited_for():
    call, calls = failing(5, retry_after_s=3600)
    pauses = Pauses()

    with pytest.raises(RetriesExhausted) as failed:
        await retrying(call, RetryPolicy(attempts=3, max_retry_after_s=30), pauses)

    assert failed.value.gave_up_early and calls["n"] == 1 and pauses.taken == []
    assert str(failed.value) == "HTTP 503 #1 (asked to wait longer than allowed)"


async def test_after_the_last_attempt_the_last_failure_is_given_with_the_count():
    call, calls = failing(10)

    with pytest.raises(RetriesExhausted) as failed:
        await retrying(call, RetryPolicy(attempts=3), Pauses())

    assert (failed.value.attempts, calls["n"], failed.value.last.reason) == (3, 3, "HTTP 503 #3")
    assert not failed.value.gave_up_early


async def test_a_failure_that_is_not_retryable_is_not_retried():
    calls = {"n": 0}

    async def call():
        calls["n"] += 1
        raise LookupError("no such package")

    with pytest.raises(LookupError):
        await retrying(call, RetryPolicy(attempts=3), Pauses())
    assert calls["n"] == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_the_threshold_refuses_then_half_opens_and_a_success_closes_it():
    clock = Clock()
    breaker = CircuitBreaker("ups", failure_threshold=3, reset_after_s=30, clock=clock)
    for _ in range(3):
        breaker.before_call()
        breaker.failed()
    assert breaker.state is BreakerState.OPEN

    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert "ups" in str(refused.value) and refused.value.retry_in_s == 30

    clock.now += 30
    breaker.before_call()  # the trial call goes through
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one trial at a time
    breaker.succeeded()
    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 0)


def test_a_failed_trial_opens_the_breaker_again_for_another_period():
    clock = Clock()
    breaker = CircuitBreaker("fedex", failure_threshold=1, reset_after_s=10, clock=clock)
    breaker.before_call()
    breaker.failed()
    clock.now += 10
    breaker.before_call()

    breaker.failed()

    assert breaker.state is BreakerState.OPEN
    clock.now += 9
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_a_success_between_failures_starts_the_count_again():
    breaker = CircuitBreaker("usps", failure_threshold=2, clock=Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED


def test_an_answer_that_says_nothing_of_health_ends_a_trial_as_a_success():
    clock = Clock()
    breaker = CircuitBreaker("auspost", failure_threshold=1, reset_after_s=5, clock=clock)
    breaker.failed()
    clock.now += 5
    breaker.before_call()

    breaker.released()  # e.g. "no such tracking number": the carrier answered

    assert breaker.state is BreakerState.CLOSED


def test_the_cache_forgets_after_its_ttl_and_keeps_at_most_its_size():
    cache: TtlCache[str] = TtlCache(ttl_s=60, max_entries=2)
    cache.put("a", "delivered", now=0)
    assert cache.get("a", now=59) == "delivered"
    assert cache.get("a", now=60) is None
    for key in ("x", "y", "z"):
        cache.put(key, key, now=100)
    assert (cache.get("x", now=100), cache.get("z", now=100)) == (None, "z")
