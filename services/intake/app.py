"""Wiring of the intake service: settings, runtime, HTTP app; ``python -m services.intake.app`` runs it."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from contracts import TOPICS, registry
from services.intake import handlers
from services.intake.adapters.orders import HttpOrderDirectory
from services.intake.projections import PROJECTIONS
from services.intake.settings import IntakeSettings
from services.kernel.process import load_settings, run, serve_http
from services.kernel.runtime import Runtime, check_dependencies
from services.kernel.web import add_health_routes, explain_errors, instrument, limit_body_size


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = Runtime.create(settings, registry, TOPICS["intake"], PROJECTIONS)
    directory = HttpOrderDirectory(settings.order_system_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start(list(TOPICS.values()))
        yield
        await runtime.stop()
        await directory.aclose()

    handlers.subscribe(runtime)
    app = FastAPI(title="Complaint intake", version="1", lifespan=lifespan,
                  description="The front door: file complaints, ask for a callback, follow a case.")
    app.state.services = handlers.Services(settings, runtime, directory)
    instrument(app)
    limit_body_size(app, settings.max_body_bytes)
    explain_errors(app)
    handlers.add_routes(app)
    add_health_routes(app, runtime)
    try:
        from services.intake import pages
    except ImportError:  # the pages module is optional while it is being built
        pages = None
    if pages is not None:
        app.include_router(pages.router)
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
