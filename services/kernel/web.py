"""What every service's HTTP app shares: a server span per request and the health endpoints.

Liveness never depends on the broker or the store (a restart would not fix them); readiness
does, so Kubernetes stops routing requests to a replica that cannot serve them.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind

from services.kernel.runtime import Runtime
from services.kernel.telemetry import continued_span


def instrument(app: FastAPI) -> None:
    """Continue the caller's W3C trace (``traceparent`` header) in a server span per request."""

    @app.middleware("http")
    async def trace_request(request: Request, call_next):
        with continued_span(f"{request.method} {request.url.path}", request.headers.get("traceparent"),
                            SpanKind.SERVER, {"http.request.method": request.method,
                                              "url.path": request.url.path}) as span:
            response = await call_next(request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response


def add_health_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/health/live", tags=["health"], summary="The process is alive.")
    async def live() -> dict:
        return {"status": "alive"}

    @app.get("/health/ready", tags=["health"], summary="The broker and the store answer.")
    async def ready() -> JSONResponse:
        checks = await runtime.ready()
        return JSONResponse({"ready": all(checks.values()), "checks": checks},
                            status_code=200 if all(checks.values()) else 503)
