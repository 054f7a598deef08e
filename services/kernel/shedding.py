"""Shedding load at the door: a write that cannot start soon is refused with 503 and Retry-After.

Under a burst beyond what the store can take, requests would otherwise pile up inside the
process, each waiting on the store, until clients time out without knowing whether their
complaint was taken. A bounded number of writes run at once (``MAX_IN_FLIGHT_WRITES``); one that
waits longer than ``WRITE_QUEUE_TIMEOUT_S`` for its turn gets a clear refusal that says when to
try again, and nothing of it was written. Reads, health and the pages' GETs are never shed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ShedLoad:
    """ASGI middleware: at most ``max_in_flight`` writes at once; a write queued longer than
    ``queue_timeout_s`` is answered 503 with ``Retry-After`` (RFC 9457 problem details)."""

    def __init__(self, app: ASGIApp, max_in_flight: int, queue_timeout_s: float, retry_after_s: int = 1) -> None:
        self.app, self.queue_timeout_s, self.retry_after_s = app, queue_timeout_s, retry_after_s
        self._slots = asyncio.Semaphore(max_in_flight)
        self.shed = 0  # refusals since start (for logs and metrics)
        self._last_log = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            return await self.app(scope, receive, send)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_timeout_s)
        except TimeoutError:
            return await self._refuse(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.shed += 1
        if (now := time.monotonic()) - self._last_log > 10:  # one line per 10 s, not one per refusal
            self._last_log = now
            log.warning("shedding writes: too many at once", extra={"fields": {"shed_so_far": self.shed}})
        from services.kernel.web import problem  # (web.py installs this middleware: imported when used)

        refusal = problem(
            503,
            f"Too many requests are being handled; nothing was recorded. Try again in {self.retry_after_s} s.",
            code="overloaded",
            headers={"Retry-After": str(math.ceil(self.retry_after_s))},
        )
        await refusal(scope, receive, send)
