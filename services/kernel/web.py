"""What every service's HTTP app shares: a server span per request, health, clear 4xx answers.

Liveness follows the consumers' progress, never a dependency's answer (a restart would not bring
the broker back); readiness follows the store, so Kubernetes stops routing requests to a replica
that cannot serve them (docs/adr/0019).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from opentelemetry.trace import SpanKind

from services.kernel import auth
from services.kernel.client_address import client_address
from services.kernel.outage import refuse_during_outages
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
    @app.get("/health/live", tags=["health"], summary="The process makes progress (services/kernel/liveness.py).")
    async def live() -> JSONResponse:
        stuck = runtime.live()
        return JSONResponse({"status": "stuck", "reasons": stuck} if stuck else {"status": "alive"},
                            status_code=503 if stuck else 200)

    @app.get("/health/ready", tags=["health"], summary="The store answers; the broker and consumer lag are reported.")
    async def ready() -> JSONResponse:
        ready, checks = await runtime.ready()
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def explain_errors(app: FastAPI) -> None:
    """422s that name the field and the rule in one readable ``message`` (plus FastAPI's detail)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}"
                            for e in errors)
        return JSONResponse({"message": message, "detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Our routes raise HTTPException({"message": ...}): answer with that body, not {"detail": …}.
        body = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def limit_body_size(app: FastAPI, max_bytes: int) -> None:
    """Refuse a body over ``max_bytes`` with 413 before anything parses it."""

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            return JSONResponse({"message": f"body: larger than {max_bytes} bytes"}, status_code=413)
        if request.method in {"POST", "PUT", "PATCH"} and not declared:
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    return JSONResponse({"message": f"body: larger than {max_bytes} bytes"}, status_code=413)
            request._body = body  # already read: let the route parse it
        return await call_next(request)


def service_app(title: str, description: str, lifespan, runtime: Runtime, max_body_bytes: int) -> FastAPI:
    """A service's FastAPI app with what every service has: tracing, body limit, 4xx answers, health."""
    app = FastAPI(title=title, version="1", description=description, lifespan=lifespan)
    instrument(app)
    limit_body_size(app, max_body_bytes)
    explain_errors(app)
    add_health_routes(app, runtime)
    refuse_during_outages(app, runtime.settings.store_request_timeout_s)
    return app


def allow_browser_origins(app: FastAPI, origins: str) -> None:
    """Let pages of these comma-separated origins call the API from the browser (CORS): another
    service's pages, e.g. intake's agent desktop, calling this service's API with a bearer token."""
    app.add_middleware(CORSMiddleware, allow_origins=[o.strip() for o in origins.split(",") if o.strip()],
                       allow_methods=["GET", "POST", "PUT", "DELETE"], max_age=600,
                       allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "traceparent"])


#: The roles of staff tokens (agents and supervisors; partners carry role "partner" and a team).
STAFF_ROLES = frozenset({"agent", "supervisor"})


def token_claims(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict:
    """FastAPI dependency: the claims of a bearer token signed with the service's SIGNING_KEY
    (``app.state.services.settings``); 401 saying why otherwise."""
    try:
        return auth.verify(auth.bearer(authorization), request.app.state.services.settings.signing_key)
    except auth.InvalidToken as exc:
        raise HTTPException(401, {"message": f"Authorization: {exc}"}, {"WWW-Authenticate": "Bearer"}) from None


def caller_address(request: Request) -> str:
    """FastAPI dependency: the caller's address, from X-Forwarded-For only behind a proxy listed in
    ``TRUSTED_PROXIES`` (``app.state.services.settings``)."""
    return client_address(request.client.host if request.client else None,
                          ",".join(request.headers.getlist("x-forwarded-for")),
                          request.app.state.services.settings.trusted_proxy_networks)
