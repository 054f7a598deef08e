"""While the broker or the store is away: refuse requests quickly and clearly, and say it once.

- An HTTP request's store operations share one deadline (``STORE_REQUEST_TIMEOUT_S``); a store
  that does not answer within it, or that cannot be reached, makes the request a 503 with
  ``Retry-After`` and an RFC 9457 problem body, instead of a hang and a bare 500.
- The logs say when a dependency goes away (one WARNING), remind at most every
  ``OUTAGE_REMINDER_S`` while it stays away, and say when it is back (one INFO): librdkafka's
  line per failed connection attempt (~40 a second) and a retry loop's line per round are folded
  into those.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar

import pymongo
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure, PyMongoError
from pymongo.monitoring import (
    ServerHeartbeatFailedEvent,
    ServerHeartbeatListener,
    ServerHeartbeatStartedEvent,
    ServerHeartbeatSucceededEvent,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
#: One line per refused request would flood the log in an outage: rate-limited (RepeatedLines).
refusals = logging.getLogger(f"{__name__}.refusals")

#: Seconds a refused client should wait: about how long the store takes to come back from a
#: restart, and short enough that a person retrying by hand is not kept waiting.
RETRY_AFTER_S = 5

#: librdkafka's lines that say only "this broker cannot be reached (yet)".
_UNREACHABLE = re.compile(
    r"Connect to .* failed|brokers are down|Disconnected|Receive failed|Send failed|"
    r"Failed to resolve|timed out|Connection refused|Connection reset|ssl handshake failed",
    re.IGNORECASE,
)


class Dependency:
    """One outside dependency as the logs tell it: away once, reminders between, back once.

    ``went_away`` and ``returned`` may be called from any thread (librdkafka logs from its own).
    """

    def __init__(self, what: str, where: str, reminder_s: float) -> None:
        self.what, self.where, self.reminder_s = what, where, reminder_s
        self.away_since: float | None = None
        self._lock = threading.Lock()
        self._last_said, self._unsaid = 0.0, 0

    @property
    def away(self) -> bool:
        return self.away_since is not None

    def went_away(self, detail: str) -> None:
        with self._lock:
            now = time.monotonic()
            if self.away_since is None:
                self.away_since, self._last_said, self._unsaid = now, now, 0
                log.warning(
                    f"{self.what} unreachable",
                    extra={"fields": {"dependency": self.what, "where": self.where, "detail": detail}},
                )
            elif now - self._last_said >= self.reminder_s:
                log.warning(
                    f"{self.what} still unreachable",
                    extra={
                        "fields": {
                            "dependency": self.what,
                            "where": self.where,
                            "detail": detail,
                            "away_s": round(now - self.away_since),
                            "failures_since_last_line": self._unsaid,
                        }
                    },
                )
                self._last_said, self._unsaid = now, 0
            else:
                self._unsaid += 1

    def returned(self) -> None:
        with self._lock:
            if self.away_since is None:
                return
            log.info(
                f"{self.what} reachable again",
                extra={
                    "fields": {
                        "dependency": self.what,
                        "where": self.where,
                        "away_s": round(time.monotonic() - self.away_since, 1),
                    }
                },
            )
            self.away_since = None


class BrokerLines(logging.Filter):
    """Takes librdkafka's connection-failure lines about the watched brokers out of the log and
    tells their ``Dependency`` instead. Installed once on the loggers librdkafka writes to."""

    def __init__(self) -> None:
        super().__init__()
        self.watches: dict[str, Dependency] = {}  # "host:port" -> the broker dependency

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not _UNREACHABLE.search(message):
            return True
        watches = list(self.watches.items())
        if not watches:
            return True
        # A cluster's brokers are named by their advertised addresses, not by the bootstrap one:
        # a line about none of the watched addresses is about the broker of the latest runtime.
        watch = next((w for address, w in watches if address in message), watches[-1][1])
        watch.went_away(message.split("]: ", 1)[-1][:300])
        return False


BROKER_LINES = BrokerLines()


def watch_broker(bootstrap_servers: str, reminder_s: float, *loggers: logging.Logger) -> Dependency:
    """The broker's ``Dependency``, fed by librdkafka's lines on ``loggers``."""
    watch = Dependency("Kafka broker", bootstrap_servers, reminder_s)
    for address in bootstrap_servers.split(","):
        BROKER_LINES.watches[address.strip()] = watch
    for logger in loggers:
        if BROKER_LINES not in logger.filters:
            logger.addFilter(BROKER_LINES)
    return watch


class StoreHeartbeats(ServerHeartbeatListener):
    """The driver's own checks of the store's server, every ``MONGODB_HEARTBEAT_MS`` (and at once
    after a failed operation): the store's ``Dependency`` goes away and returns with them."""

    def __init__(self, watch: Dependency) -> None:
        self.watch = watch

    def started(self, event: ServerHeartbeatStartedEvent) -> None:
        pass

    def succeeded(self, event: ServerHeartbeatSucceededEvent) -> None:
        self.watch.returned()

    def failed(self, event: ServerHeartbeatFailedEvent) -> None:
        self.watch.went_away(str(event.reply).split(" (configured timeouts")[0][:300])


class RepeatedLines(logging.Filter):
    """A retry loop's WARNING or ERROR repeated every round (the store or broker away) is written
    once, then once per ``every_s`` with how many were left out."""

    def __init__(self, every_s: float) -> None:
        super().__init__()
        self.every_s = every_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno not in (logging.WARNING, logging.ERROR):
            return True
        key, now = (record.name, str(record.msg)), time.monotonic()
        with self._lock:
            said, left_out = self._seen.get(key, (0.0, 0))
            if now - said < self.every_s:
                self._seen[key] = (said, left_out + 1)
                return False
            self._seen[key] = (now, 0)
        if left_out:
            record.fields = {**getattr(record, "fields", {}), "repeated_since_last_line": left_out}
        return True


def quiet_retry_loops(every_s: float, *loggers: str) -> None:
    """Rate-limit the repeated WARNINGs and ERRORs of these loggers, a retry loop's each (only
    theirs: a dead letter, for one, is worth a line every time)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatedLines) for f in logger.filters):
            logger.addFilter(RepeatedLines(every_s))


def store_unavailable(exc: PyMongoError) -> bool:
    """Whether ``exc`` says the store cannot be reached or did not answer in time (else: a bug or a
    refusal of this operation, which a 503 would misname)."""
    return isinstance(exc, ConnectionFailure) or exc.timeout


#: Per request (the store-deadline middleware sets it): what it answered from memory, the store
#: being away. A list, so that the route's task (which runs in a copy of the context) adds to it.
_from_memory: ContextVar[list[str] | None] = ContextVar("from_memory", default=None)
#: The header of an answer read from memory (RFC 9111's "Response is Stale" warning code).
STALE_WARNING = '110 - "Response is Stale: the store is unavailable; served from memory"'


def served_from_memory(what: str) -> None:
    """The current request answers with ``what`` as this process last read it, since the store
    did not: its answer says so (``Warning: 110``)."""
    if (said := _from_memory.get()) is not None:
        said.append(what)


def refuse_during_outages(app: FastAPI, request_timeout_s: float) -> None:
    """Give every request's store operations one deadline, and answer a store that is away with
    503, ``Retry-After`` and a problem body (RFC 9457) — unless the route could answer from memory
    (``served_from_memory``): then with what it had, marked stale."""

    app.add_middleware(StoreDeadline, request_timeout_s=request_timeout_s)

    @app.exception_handler(PyMongoError)
    async def store_away(request: Request, exc: PyMongoError) -> JSONResponse:
        if not store_unavailable(exc):
            raise exc
        refusals.warning(
            "request refused: the store is unavailable",
            extra={"fields": {"path": request.url.path, "error": str(exc).split(" (configured timeouts")[0][:300]}},
        )
        return problem(
            503,
            "Service temporarily unavailable",
            f"The complaint store did not answer in time. Please try again in {RETRY_AFTER_S} seconds.",
            "/problems/store-unavailable",
            {"Retry-After": str(RETRY_AFTER_S)},
        )


class StoreDeadline:
    """ASGI middleware: the request's store operations under one deadline (``pymongo.timeout`` is
    a context variable: the route inherits it), and ``Warning: 110`` on an answer served from
    memory. Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which runs the route in a
    task group of its own and streams the answer through a memory channel: with the body limit,
    a fifth of intake's CPU in a burst went to those two (py-spy, GIL samples)."""

    def __init__(self, app: ASGIApp, request_timeout_s: float) -> None:
        self.app, self.request_timeout_s = app, request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        said: list[str] = []

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start" and said:
                headers = [*message.get("headers", []), (b"warning", STALE_WARNING.encode())]
                message = {**message, "headers": headers}
            await send(message)

        marker = _from_memory.set(said)
        try:
            with pymongo.timeout(self.request_timeout_s):
                await self.app(scope, receive, marked)
        finally:
            _from_memory.reset(marker)


def problem(status: int, title: str, detail: str, type_: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem answer."""
    return JSONResponse(
        {"type": type_, "title": title, "status": status, "detail": detail},
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )
