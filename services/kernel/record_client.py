"""Reading one JSON record by id from another system over HTTP (the order system, the seller-account
system): ``GET {base_url}/{collection}/{id}``, with what every such read needs.

A 404 is "no such record" (None). Timeouts, refused connections and 5xx answers are retried a few
times with a short jittered backoff; after that, or on any other answer, ``RecordUnavailable``: the
caller must not confuse "could not ask" with "there is none". The trace goes along (httpx's
instrumentation, kernel/telemetry.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from services.kernel.resilience import RetriesExhausted, Retryable, RetryPolicy, retry_after_s, with_retries


class RecordUnavailable(Exception):
    """The other system could not say: down, slow, or answering 5xx or nonsense."""

    def __init__(self, url: str, reason: str, attempts: int) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.attempts = url, reason, attempts


class RecordClient:
    """``get(collection, key)`` → the record's JSON, None when there is none."""

    def __init__(self, base_url: str, timeout_s: float = 2.0, retries: int = 2, backoff_s: float = 0.1) -> None:
        self.base_url = base_url.rstrip("/")
        # the kernel's one retry mechanism (resilience.py): full jitter, a 5xx's Retry-After honoured
        self.policy = RetryPolicy(
            attempts=retries + 1, base_s=backoff_s, cap_s=max(backoff_s, 2.0), max_retry_after_s=timeout_s
        )
        self._client = httpx.AsyncClient(timeout=timeout_s)

    def url(self, collection: str, key: str) -> str:
        return f"{self.base_url}/{collection}/{quote(key, safe='')}"

    async def get(self, collection: str, key: str) -> Any | None:
        if key in {"", ".", ".."}:  # no record has such an id, and as a path segment it would climb
            return None
        url = self.url(collection, key)

        async def ask() -> httpx.Response:
            try:
                response = await self._client.get(url)
            except httpx.TransportError as exc:  # timeouts, refused connections, cut answers
                raise Retryable(f"{type(exc).__name__} {exc}".strip()) from None
            if response.status_code >= 500:
                raise Retryable(f"HTTP {response.status_code}", retry_after_s(response.headers.get("retry-after")))
            return response

        try:
            response, attempts = await with_retries(ask, self.policy)
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
