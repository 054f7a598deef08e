"""Wiring of the intake service: settings, runtime, HTTP app; ``python -m services.intake.app`` runs it."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from contracts import TOPICS, registry
from services.intake import desk, handlers, metrics, pages
from services.intake.adapters.orders import HttpOrderDirectory
from services.intake.projections import PROJECTIONS
from services.intake.settings import IntakeSettings
from services.kernel.meters import watch_behind as metrics_watch_behind
from services.kernel.runtime import Runtime
from services.kernel.startup import load_settings, run_http_service
from services.kernel.web import service_app


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = Runtime.create(settings, registry, TOPICS["intake"], PROJECTIONS, collections=["threads"])
    directory = HttpOrderDirectory(settings.order_system_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start(list(TOPICS.values()))
        behind = app.state.services.callbacks_behind
        watch = (
            asyncio.create_task(behind.run(), name="callbacks-behind") if settings.callback_admission_wait_s else None
        )
        metrics_watch_behind(behind.figures)
        try:
            yield
        finally:  # also when the server (or a test using the app) fails: nothing left consuming
            if watch is not None:
                watch.cancel()
                with suppress(asyncio.CancelledError):
                    await watch
            await behind.close()  # its Kafka clients, on their own thread (kernel/lag.py says why)
            await runtime.stop()
            await directory.aclose()

    app = service_app(
        "Complaint intake",
        "The front door: file complaints, ask for a callback, follow a case.",
        lifespan,
        runtime,
        settings.max_body_bytes,
    )
    app.state.services = handlers.Services(settings, runtime, directory)
    handlers.subscribe(runtime, app.state.services.intake)
    handlers.add_routes(app)
    app.include_router(pages.router)
    desk.add_desk(app)
    app.include_router(metrics.api)
    metrics.export_figures(app, runtime.store.db, settings.metrics_days)
    pages.mount_static(app)
    return app


def main() -> None:
    settings = load_settings(IntakeSettings)
    run_http_service(settings, lambda: create_app(settings))


if __name__ == "__main__":
    main()
