"""Calling an unreliable neighbour over the network: retries with backoff, a circuit breaker, a short cache.

Generic: nothing here knows what is being called (HTTP's part: kernel/outbound.py). The retries are
tenacity's (docs/adr/0035), on our policy. Clocks and sleeps are passed in, so tests drive every
state change without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, NoReturn, TypeVar, cast

import tenacity

T = TypeVar("T")
V = TypeVar("V")


class Retryable(Exception):
    """Raised by a call that may succeed if tried again (429, 5xx, a timeout, a cut connection).

    ``retry_after_s`` is the server's own ``Retry-After``, if it sent one: it knows its load
    better than our backoff does, so it is honoured as the least pause.
    """

    def __init__(self, reason: str, retry_after_s: float | None = None, kind: str = "unavailable") -> None:
        super().__init__(reason)
        self.reason, self.retry_after_s, self.kind = reason, retry_after_s, kind


class RetriesExhausted(Exception):
    """Every attempt failed; ``last`` is the final failure, ``attempts`` how many were made."""

    def __init__(self, last: Retryable, attempts: int, gave_up_early: bool = False) -> None:
        why = "asked to wait longer than allowed" if gave_up_early else f"after {attempts} attempt(s)"
        super().__init__(f"{last.reason} ({why})")
        self.last, self.attempts, self.gave_up_early = last, attempts, gave_up_early


def backoff_s(failures: int, cap_s: float) -> float:
    """The pause after ``failures`` failures in a row of one loop that must go on (a consumer's
    redelivery, an offset commit): 0.2 s doubling up to ``cap_s``, without jitter, since a loop
    of one process has nobody to spread out from."""
    return float(min(cap_s, 0.1 * 2 ** min(failures, 10)))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try: exponential backoff with full jitter, capped.

    Full jitter (a uniform pause between 0 and the exponential bound) spreads the retries of
    many clients that failed together, instead of sending them back in one wave.
    """

    attempts: int = 3
    base_s: float = 0.2
    cap_s: float = 5.0
    #: A ``Retry-After`` longer than this is not waited for: the caller gives up and says why.
    max_retry_after_s: float = 30.0

    def pause(self, state: tenacity.RetryCallState) -> float:
        """The pause before the next attempt: the jittered backoff, or the server's Retry-After if longer."""
        backoff: float = tenacity.wait_random_exponential(multiplier=self.base_s, max=self.cap_s)(state)
        return max(backoff, _failure(state).retry_after_s or 0.0)

    def stops(self, state: tenacity.RetryCallState) -> bool:
        asked = _failure(state).retry_after_s or 0.0
        return state.attempt_number >= self.attempts or asked > self.max_retry_after_s

    def give_up(self, state: tenacity.RetryCallState) -> NoReturn:
        early = state.attempt_number < self.attempts  # stopped before the last: asked to wait too long
        raise RetriesExhausted(_failure(state), state.attempt_number, gave_up_early=early) from None


def _failure(state: tenacity.RetryCallState) -> Retryable:
    # tenacity asks wait and stop only after an attempt failed, and only Retryable is retried
    return cast(Retryable, state.outcome and state.outcome.exception())


async def retrying(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[T, int]:
    """Run ``call`` until it returns, retrying on ``Retryable``; returns (result, attempts made).

    Raises ``RetriesExhausted`` after the last attempt, or at once when the server asks for a
    pause longer than the policy allows. Any other exception is not retried.
    """
    attempts = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(Retryable),
        stop=policy.stops,
        wait=policy.pause,
        sleep=sleep,
        retry_error_callback=policy.give_up,
    )
    async for attempt in attempts:
        with attempt:
            return await call(), attempt.retry_state.attempt_number
    raise AssertionError("unreachable: tenacity either returns, raises or gives up")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """The breaker refuses calls for now; ``retry_in_s`` says when it will let one through."""

    def __init__(self, name: str, retry_in_s: float) -> None:
        super().__init__(f"circuit of {name} is open after repeated failures; next try in {retry_in_s:.0f} s")
        self.name, self.retry_in_s = name, retry_in_s


class CircuitBreaker:
    """Stops calling a neighbour that keeps failing, then lets one trial call through.

    Closed: calls pass; ``failure_threshold`` failures in a row open it. Open: calls are refused
    at once (no waiting on a dead service) for ``reset_after_s``. Half-open: one trial call
    passes (others are refused meanwhile); its success closes the breaker, its failure opens it
    again for another ``reset_after_s``. In process memory, one per replica and neighbour.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.failure_threshold, self.reset_after_s, self.clock = (
            name,
            failure_threshold,
            reset_after_s,
            clock,
        )
        self.state, self.failures, self._opened_at, self._trial_running = BreakerState.CLOSED, 0, 0.0, False

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go out now."""
        if self.state is BreakerState.OPEN:
            waited = self.clock() - self._opened_at
            if waited < self.reset_after_s:
                raise CircuitOpen(self.name, self.reset_after_s - waited)
            self.state = BreakerState.HALF_OPEN
        if self.state is BreakerState.HALF_OPEN:
            if self._trial_running:
                raise CircuitOpen(self.name, 0)
            self._trial_running = True

    def succeeded(self) -> None:
        self.state, self.failures, self._trial_running = BreakerState.CLOSED, 0, False

    def failed(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.state, self._opened_at = BreakerState.OPEN, self.clock()
        self._trial_running = False

    def released(self) -> None:
        """The call ended in a way that says nothing about the neighbour's health (e.g. a 404)."""
        if self.state is BreakerState.HALF_OPEN:
            self.succeeded()  # it answered: that is all a trial call has to show


class TtlCache(Generic[V]):
    """Values kept for ``ttl_s`` seconds, at most ``max_entries`` (the oldest go first)."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None or now - entry[0] >= self.ttl_s:
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: str, value: V, now: float) -> None:
        self._entries[key] = (now, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
