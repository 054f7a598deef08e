"""Calling other systems over HTTP: the one way to build a client, to sort a failure, to read a record.

Every client is an ``httpx.AsyncClient``, so every call is traced (telemetry.setup_tracing
instruments httpx: a client span and ``traceparent`` on the request). ``request`` sorts what
another try may mend into ``Retryable`` for kernel/resilience.py's ``retrying`` (tenacity).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from services.kernel.resilience import RetriesExhausted, Retryable, RetryPolicy, retrying


def client(base_url: str, timeout_s: float, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for one neighbour (``auth``, ``headers``, ``transport`` as httpx takes them)."""
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, **kwargs)


@asynccontextmanager
async def request(
    http: httpx.AsyncClient, method: str, url: str, who: str = "", **kwargs: Any
) -> AsyncIterator[httpx.Response]:
    """The streamed answer to one request, or ``Retryable`` for 429, 5xx, timeouts and transport
    failures (also while the body is read). ``who`` starts the reason, e.g. ``ups``."""
    try:
        async with http.stream(method, url, **kwargs) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise Retryable(
                    f"{who} answered HTTP {response.status_code}".lstrip(),
                    retry_after_s(response.headers.get("retry-after")),
                    "rate_limited" if response.status_code == 429 else "unavailable",
                )
            yield response
    except httpx.TimeoutException as exc:
        within = f"{who} did not answer within {http.timeout.read or 0:g} s ({type(exc).__name__})"
        raise Retryable(within.lstrip(), kind="timeout") from None
    except httpx.TransportError as exc:
        raise Retryable(f"{who} unreachable ({type(exc).__name__}: {exc})".lstrip()) from None


def retry_after_s(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """``Retry-After`` in seconds: either delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - now()).total_seconds())
    except (TypeError, ValueError):
        return None


class RecordUnavailable(Exception):
    """The other system could not say: down, slow, or answering 5xx or nonsense."""

    def __init__(self, url: str, reason: str, attempts: int) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.attempts = url, reason, attempts


class RecordClient:
    """One JSON record by id from another system (the order system, the seller-account system):
    ``get(collection, key)`` reads ``GET {base_url}/{collection}/{id}``.

    A 404 is "no such record" (None). Timeouts, refused connections, 429 and 5xx answers are retried
    a few times with a short jittered backoff; after that, or on any other answer,
    ``RecordUnavailable``: the caller must not confuse "could not ask" with "there is none".
    """

    def __init__(self, base_url: str, timeout_s: float = 2.0, retries: int = 2, backoff_s: float = 0.1) -> None:
        self.base_url = base_url.rstrip("/")
        # a Retry-After longer than one request's timeout is not worth a reader's wait
        self.policy = RetryPolicy(retries + 1, backoff_s, max(backoff_s, 2.0), max_retry_after_s=timeout_s)
        self._client = client(self.base_url, timeout_s)

    def url(self, collection: str, key: str) -> str:
        return f"{self.base_url}/{collection}/{quote(key, safe='')}"

    async def get(self, collection: str, key: str) -> Any | None:
        if key in {"", ".", ".."}:  # no record has such an id, and as a path segment it would climb
            return None
        url = self.url(collection, key)

        async def ask() -> httpx.Response:
            async with request(self._client, "GET", url) as response:
                await response.aread()
                return response

        try:
            response, attempts = await retrying(ask, self.policy)
        except RetriesExhausted as exc:
            raise RecordUnavailable(url, f"{exc.last.reason} after {exc.attempts} attempts", exc.attempts) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:  # not retried: asking again gets the same answer
            raise RecordUnavailable(url, f"HTTP {response.status_code}: {response.text[:200]}", attempts)
        try:
            return response.json()
        except ValueError as exc:
            raise RecordUnavailable(url, f"unreadable answer ({type(exc).__name__}: {exc})", attempts) from exc

    async def aclose(self) -> None:
        await self._client.aclose()
