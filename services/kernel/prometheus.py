"""``GET /metrics`` of every service, in Prometheus' text format: one registry per app, and hooks
that refresh what a service exports just before each scrape (figures read from its store).

A service adds collectors to ``app.state.prometheus`` and, if they read the store, an async
``before_scrape`` hook that brings their values up to date; the route runs the hooks, then renders
the registry. Excluded from the OpenAPI document: it is for the cluster's scraper, not for people.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

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
    async def metrics() -> Response:
        for hook in exported.hooks:
            await hook()
        return Response(generate_latest(exported.registry), media_type=CONTENT_TYPE_LATEST)

    return exported
