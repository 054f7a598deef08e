"""Wiring of the intake service: settings, runtime, HTTP app; ``python -m services.intake.app`` runs it."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from contracts import TOPICS, registry
from services.intake import desk, handlers, pages
from services.intake.adapters.orders import HttpOrderDirectory
from services.intake.projections import PROJECTIONS
from services.intake.settings import IntakeSettings
from services.kernel.process import load_settings, run, serve_http
from services.kernel.runtime import Runtime, check_dependencies
from services.kernel.web import service_app


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = Runtime.create(settings, registry, TOPICS["intake"], PROJECTIONS)
    directory = HttpOrderDirectory(settings.order_system_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start(list(TOPICS.values()))
        try:
            yield
        finally:  # also when the server (or a test using the app) fails: nothing left consuming
            await runtime.stop()
            await directory.aclose()

    app = service_app("Complaint intake", "The front door: file complaints, ask for a callback, follow a case.",
                      lifespan, runtime, settings.max_body_bytes)
    app.state.services = handlers.Services(settings, runtime, directory)
    handlers.subscribe(runtime, app.state.services.intake)
    handlers.add_routes(app)
    app.include_router(pages.router)
    desk.add_desk(app)
    pages.mount_static(app)
    return app


def main() -> None:
    settings = load_settings(IntakeSettings)

    async def serve() -> None:
        await check_dependencies(settings)  # before uvicorn: a clear line and exit 2, not its exit 3
        await serve_http(create_app(settings), settings.http_host, settings.http_port)

    run(settings, serve)


if __name__ == "__main__":
    main()
