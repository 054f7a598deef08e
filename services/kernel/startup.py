"""Running a service process: logs, tracing, start-up checks that name what is missing, graceful stop.

SIGTERM or SIGINT stops consuming (in-flight handlers finish), drains the pending log entries to
Kafka, flushes the producer, commits offsets and exits 0. A broker or store that cannot be
reached at start-up, or a missing or invalid setting, ends the process with exit code 2 and one
line saying which, and where.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn
import uvloop
from pydantic import ValidationError
from starlette.types import ASGIApp

from services.kernel.runtime import DependencyUnavailable, Runtime, check_dependencies
from services.kernel.settings import HttpServiceSettings, KernelSettings
from services.kernel.telemetry import setup_logging, setup_tracing

log = logging.getLogger(__name__)
S = TypeVar("S", bound=KernelSettings)

EXIT_DEPENDENCY_UNAVAILABLE = 2


async def serve(runtime: Runtime, on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
    """Start ``runtime``, wait for SIGTERM/SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    if on_ready is not None:
        await on_ready()
    await stop.wait()
    end_within(runtime.settings.stop_timeout_s)
    log.info("stopping: finishing in-flight work", extra={"fields": {"service": runtime.settings.service_name}})
    await runtime.stop()
    log.info("stopped", extra={"fields": {"service": runtime.settings.service_name}})


def end_within(seconds: float) -> None:
    """The backstop of a graceful stop: the process ends within ``seconds`` even if a broker or
    store call hangs (a commit stuck in librdkafka, issue 21), in a thread or in the interpreter's
    exit. SIGALRM left to its default action ends the process wherever it is (exit by signal 14,
    so the orchestrator sees the stop was not clean)."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    log.info(
        "stopping; the process ends within its stop timeout whatever hangs",
        extra={"fields": {"stop_timeout_s": seconds}},
    )


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising SIGTERM after its graceful shutdown (the process would then die
    by the signal, exit 143): we stop the same way, then exit 0 as Kubernetes expects; and ends
    within ``stop_timeout_s`` whatever hangs (``end_within``)."""

    def __init__(self, config: uvicorn.Config, stop_timeout_s: float) -> None:
        super().__init__(config)
        self.stop_timeout_s = stop_timeout_s

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_within_time, sig)
        yield

    def stop_within_time(self, sig: int) -> None:
        if not self.should_exit:
            end_within(self.stop_timeout_s)
        self.handle_exit(sig, None)


def http_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    # uvicorn's proxy_headers would believe X-Forwarded-For from 127.0.0.1 (any local process, or a
    # sidecar passing the header through): the app decides whom to believe (TRUSTED_PROXIES).
    return uvicorn.Config(app, host=host, port=port, log_config=None, proxy_headers=False)


async def serve_http(app: ASGIApp, host: str, port: int, stop_timeout_s: float = 20.0) -> None:
    """Serve ``app`` (its lifespan starts and stops the runtime) until SIGTERM/SIGINT, gracefully."""
    await _Server(http_config(app, host, port), stop_timeout_s).serve()


def load_settings(cls: type[S]) -> S:
    """The service's settings from the environment; a missing or invalid one ends the process
    with exit code 2 and a line naming the variable and the rule."""
    try:
        return cls()
    except ValidationError as exc:
        for error in exc.errors():
            variable = "_".join(str(p) for p in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            print(
                f"invalid setting {variable}: {message}" if variable else f"invalid settings: {message}",
                file=sys.stderr,
            )
        raise SystemExit(EXIT_DEPENDENCY_UNAVAILABLE) from None


def run(settings: KernelSettings, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """The body of a service's ``__main__``: set up logs and tracing, run ``main``, map failures."""
    setup_logging(settings.log_level)
    setup_tracing(settings.service_name)
    loop_factory = uvloop.new_event_loop if settings.event_loop == "uvloop" else None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main())
    except DependencyUnavailable as exc:
        log.error(
            "dependency unavailable at start-up",
            extra={"fields": {"what": exc.what, "where": exc.where, "reason": exc.why}},
        )
        print(f"{settings.service_name}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_DEPENDENCY_UNAVAILABLE) from None


def run_http_service(settings: HttpServiceSettings, create_app: Callable[[], ASGIApp]) -> None:
    """The ``main()`` of a service with an HTTP app: its broker and store checked before uvicorn
    starts (a clear line and exit 2, not uvicorn's exit 3), then served until SIGTERM."""

    async def serve_app() -> None:
        await check_dependencies(settings)
        await serve_http(create_app(), settings.http_host, settings.http_port, settings.stop_timeout_s)

    run(settings, serve_app)
