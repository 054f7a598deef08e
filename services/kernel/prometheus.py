"""``GET /metrics`` of every service, in Prometheus' text format: the process's metrics (the
kernel's and the HTTP instrumentation's, ``kernel/meters.py``), then the app's own registry, with
hooks that refresh what a service exports just before each scrape (figures read from its store).

A service adds collectors to ``app.state.prometheus`` and, if they read the store, an async
``before_scrape`` hook that brings their values up to date; the route runs the hooks, then renders
both registries. Excluded from the OpenAPI document: it is for the cluster's scraper, which calls
the pods; a request that came through a proxy (an ingress or a gateway adds ``X-Forwarded-For`` or
``Forwarded``) is answered 404, so the figures stay inside the cluster even where the ingress
routes every path to the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.kernel import meters
from services.kernel.web import problem

Hook = Callable[[], Awaitable[None]]


class Exported:
    """What one app exports: its registry, and what to run before each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.hooks: list[Hook] = []

    def before_scrape(self, hook: Hook) -> None:
        self.hooks.append(hook)


def add_metrics_route(app: FastAPI) -> Exported:
    exported = app.state.prometheus = Exported()

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
            return problem(404, "Not Found", code="not_found")
        for hook in exported.hooks:
            await hook()
        return Response(meters.exposition() + generate_latest(exported.registry), media_type=CONTENT_TYPE_LATEST)

    return exported
