"""What every service's HTTP app shares: a server span per request, health, clear 4xx answers.

Liveness follows the consumers' progress, never a dependency's answer (a restart would not bring
the broker back); readiness follows the store, so Kubernetes stops routing requests to a replica
that cannot serve them (docs/adr/0019).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from services.kernel import auth, meters
from services.kernel.client_address import client_address
from services.kernel.clock import SystemClock
from services.kernel.errors import DomainError
from services.kernel.idempotency import IdempotencyKeyReused
from services.kernel.outage import refuse_during_outages
from services.kernel.runtime import Runtime
from services.kernel.shedding import ShedLoad

log = logging.getLogger(__name__)


def instrument(app: FastAPI) -> None:
    """A server span per request, continuing the caller's W3C trace (``traceparent``), named by the
    route's template (``POST /api/complaints/{complaint_id}/notes``), by OpenTelemetry's FastAPI
    instrumentation; probes and metrics scrapes are left out (they would be most of the spans)."""
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/health/.*,/metrics")


class ConsumerProgress(BaseModel):
    consumer: str = Field(description="The consumer (group and topics).")
    has_lag: bool = Field(description="Whether it holds messages taken but not yet committed.")
    last_progress_s_ago: float = Field(description="Seconds since it last committed a message.")
    stuck: list[str] = Field(
        default=[],
        description="Partitions (`topic[partition]`) with lag that have not "
        "moved for PARTITION_STUCK_S (each also logged once, as a WARNING).",
        examples=[["complaints.intake.v1[3]"]],
    )


class ReadinessChecks(BaseModel):
    store: bool = Field(description="Whether the document store answers (required to be ready).")
    broker: bool = Field(description="Whether Kafka answers (reported, not required: writes wait in the log).")
    consumers: list[ConsumerProgress] = Field(default=[], description="Each consumer's lag and progress.")


class Readiness(BaseModel):
    ready: bool = Field(description="Whether the service can serve its HTTP traffic (its store answers).")
    checks: ReadinessChecks = Field(description="What was checked.")


def add_health_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/health/live", tags=["health"], summary="The process makes progress (services/kernel/liveness.py).")
    async def live() -> JSONResponse:
        stuck = runtime.live()
        return JSONResponse(
            {"status": "stuck", "reasons": stuck} if stuck else {"status": "alive"}, status_code=503 if stuck else 200
        )

    @app.get(
        "/health/ready",
        tags=["health"],
        summary="The store answers; the broker and consumer lag are reported.",
        responses={
            200: {"model": Readiness},
            503: {"model": Readiness, "description": "Not ready: the store does not answer."},
        },
    )
    async def ready() -> JSONResponse:
        ready, checks = await runtime.ready()
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


F = TypeVar("F", bound=Callable[..., Any])


def answers(*statuses: int) -> Callable[[F], F]:
    """Mark a FastAPI dependency with the refusals it may answer: every route using it documents
    them in its OpenAPI (``services.kernel.openapi``)."""

    def mark(dependency: F) -> F:
        dependency.answers = frozenset(statuses)  # type: ignore[attr-defined]
        return dependency

    return mark


# --- one error format: RFC 9457 problem details ------------------------------------------------------

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One broken rule of a request: which field, and the rule it breaks."""

    field: str = Field(
        description="The field, dotted (`complainant.email`, `items.0.sku`); `body` for the whole body.",
        examples=["complainant.email"],
    )
    rule: str = Field(description="The rule it breaks, in words.", examples=["value is not a valid email address"])
    loc: list[str | int] = Field(
        description="Where the field is: `body`, `query`, `path` or `header`, then the path inside it.",
        examples=[["body", "complainant", "email"]],
    )
    type: str = Field(description="A stable name of the rule.", examples=["value_error"])


class Problem(BaseModel):
    """Every refusal and error of every service's API, as RFC 9457 problem details
    (``application/problem+json``). ``message`` repeats ``detail`` for clients written before."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})
    type: str = Field(
        "about:blank",
        description="A URI naming the kind of problem: `urn:complaints:problem:"
        "<code>`, or `about:blank` when the status says it all.",
        examples=["urn:complaints:problem:illegal_state"],
    )
    title: str = Field(description="The HTTP status's phrase.", examples=["Conflict"])
    status: int = Field(ge=400, le=599, description="The HTTP status code.", examples=[409])
    detail: str = Field(
        description="What went wrong and what to do, for people; it names the field and the rule.",
        examples=["Cannot resolve: the case is closed."],
    )
    message: str = Field(description="The same as `detail`.", examples=["Cannot resolve: the case is closed."])
    code: str | None = Field(
        None, description="A stable code of the refusal, when there is one.", examples=["illegal_state"]
    )
    field: str | None = Field(None, description="The request field at fault, when one is.", examples=["brief.promised"])
    errors: list[FieldError] | None = Field(None, description="Every broken rule (validation errors).")


def problem_body(
    status: int, detail: str, *, code: str | None = None, field: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """The problem details of one refusal or error (a body to store, e.g. an idempotent answer)."""
    body: dict[str, Any] = {
        "type": f"urn:complaints:problem:{code}" if code else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "message": detail,
    }
    if code:
        body["code"] = code
    if field:
        body["field"] = field
    encoded: dict[str, Any] = jsonable_encoder({k: v for k, v in extensions.items() if v is not None})
    return body | encoded


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Answer with problem details (``application/problem+json``): the one error format of every service."""
    return JSONResponse(
        problem_body(status, detail, code=code, field=field, **extensions),
        status,
        headers=dict(headers or {}),
        media_type=PROBLEM_JSON,
    )


def _dotted(loc: Sequence[str | int]) -> str:
    inside = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in {"body", "query", "path", "header", "cookie"}
        else [str(p) for p in loc]
    )
    return ".".join(inside) or (str(loc[0]) if loc else "body")


def explain_errors(app: FastAPI) -> None:
    """The one exception handling of every service: each refusal becomes problem details.

    Validation errors name every field and rule (422); a ``DomainError`` answers with its kind's
    status; an ``HTTPException`` raised with ``{"message": ..., "field": ...}`` keeps those; an
    ``IdempotencyKeyReused`` is a 422 on the header. Anything else is a bug: a 500 problem (logged
    with its traceback) that keeps the connection open, since the next request is not at fault.
    """

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": "body",
                "rule": f"not valid JSON (at character {e['loc'][-1]})",
                "loc": list(e["loc"]),
                "type": e["type"],
            }
            if e["type"] == "json_invalid"
            # its loc ends with a position
            else {"field": _dotted(e["loc"]), "rule": e["msg"], "loc": list(e["loc"]), "type": e["type"]}
            for e in exc.errors()
        ]
        return problem(
            422,
            "; ".join(f"{e['field']}: {e['rule']}" for e in errors),
            code="invalid_request",
            field=errors[0]["field"] if errors else None,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        given = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
        extensions = {k: v for k, v in given.items() if k not in {"message", "detail", "code", "field"}}
        return problem(
            exc.status_code,
            str(given.get("message", HTTPStatus(exc.status_code).phrase)),
            code=given.get("code"),
            headers=getattr(exc, "headers", None),
            # FastAPI's own 400 is a body that is not JSON (or not UTF-8)
            field=given.get("field") or ("body" if exc.status_code == 400 else None),
            **extensions,
        )

    @app.exception_handler(DomainError)
    async def domain_refusal(request: Request, exc: DomainError) -> JSONResponse:
        return refusal(exc)

    @app.exception_handler(IdempotencyKeyReused)
    async def key_reused(request: Request, exc: IdempotencyKeyReused) -> JSONResponse:
        return problem(422, f"Idempotency-Key: {exc}", code="idempotency_key_reused", field="Idempotency-Key")

    app.add_middleware(AnswerServerErrors)


def refusal(exc: DomainError) -> JSONResponse:
    """The answer to a refusal: its kind's status, code, field and extensions (and ``Retry-After``)."""
    retry_after = getattr(exc, "retry_after_s", None)
    return problem(
        exc.status,
        exc.message,
        code=exc.code,
        field=exc.field,
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
        **exc.extensions(),
    )


def refuse_as(app: FastAPI, kind: type[Exception], meaning: Callable[[Any], DomainError]) -> None:
    """Answer an adapter's exception (the order system is down, a carrier knows no such package)
    as the refusal it means, in the same format: the adapter stays free of HTTP."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        return refusal(meaning(exc))

    app.add_exception_handler(kind, answer)


class AnswerServerErrors:
    """ASGI middleware: an unhandled exception becomes a 500 problem, logged, and goes no further.

    Starlette's own last resort answers 500 and then re-raises, which makes the server drop the
    keep-alive connection; a client's next, valid request would then fail for nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error answering %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for an answer of our own: let the server close the connection
                raise
            await problem(
                500,
                "internal error: the request could not be completed; it was logged. Try again later.",
                code="internal_error",
            )(scope, receive, send)


def limit_body_size(app: FastAPI, max_bytes: int) -> None:
    """Refuse a body over ``max_bytes`` with 413 before anything parses it."""
    app.add_middleware(LimitBodySize, max_bytes=max_bytes)


class LimitBodySize:
    """ASGI middleware of ``limit_body_size``: a declared length over the limit is refused at once;
    a write without one (chunked) is read up to the limit and handed on as read. Plain ASGI, as
    ``outage.StoreDeadline`` says why."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self) -> Response:
        return problem(413, f"body: larger than {self.max_bytes} bytes", code="too_large", field="body")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large()(scope, receive, send)
        if scope["method"] not in {"POST", "PUT", "PATCH"} or declared is not None:
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._too_large()(scope, receive, send)
        read = False

        async def replay() -> Message:
            nonlocal read
            if read:
                return await receive()
            read = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def service_app(
    title: str, description: str, lifespan: Lifespan[FastAPI], runtime: Runtime, max_body_bytes: int
) -> FastAPI:
    """A service's FastAPI app with what every service has: tracing, body limit, 4xx answers, health,
    ``/metrics`` for Prometheus."""
    from services.kernel.openapi import add_docs  # it documents this module's Problem
    from services.kernel.prometheus import add_metrics_route

    # operationId = the route's function name: short, stable, what links and clients refer to.
    app = FastAPI(
        title=title,
        version="1",
        description=description,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.clock = SystemClock()  # what a token's expiry is checked against (a test moves it on)
    add_docs(app)
    if runtime is not None:  # (tests of the HTTP edge alone build an app with no runtime)
        app.add_middleware(
            ShedLoad,
            max_in_flight=runtime.settings.max_in_flight_writes,
            queue_timeout_s=runtime.settings.write_queue_timeout_s,
        )
    if runtime is not None:
        meters.setup_metrics(runtime.settings.service_name)
    instrument(app)
    limit_body_size(app, max_body_bytes)
    explain_errors(app)
    add_health_routes(app, runtime)
    add_metrics_route(app)
    if runtime is not None:
        refuse_during_outages(app, runtime.settings.store_request_timeout_s)
    return app


def allow_browser_origins(app: FastAPI, origins: str) -> None:
    """Let pages of these comma-separated origins call the API from the browser (CORS): another
    service's pages, e.g. intake's agent desktop, calling this service's API with a bearer token."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in origins.split(",") if o.strip()],
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        max_age=600,
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "traceparent"],
    )


#: An id in a URL path.
PathId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^\S+$", description="An id, as given.")]
#: The ``Authorization`` header: ``Bearer <token>``.
Authorization = Annotated[str | None, Header(max_length=4096, description="`Bearer <token>`.")]
#: A signed token in the query string (a link's).
TokenQuery = Annotated[str | None, Query(max_length=4096, description="The signed token of a link.")]


#: The roles of staff tokens (agents and supervisors; partners carry role "partner" and a team).
STAFF_ROLES = frozenset({"agent", "supervisor"})


#: A claim naming someone or something: printable, no surrounding blanks, not empty.
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


class Claims(BaseModel):
    """The claims of a person's bearer token, as every API reads them: who acts (``sub``), in which
    ``role``, for which partner ``team``. Other claims pass through (``exp``, a case link's
    ``complaint_id``); a token whose claims do not fit is not a token we issued: 401."""

    model_config = ConfigDict(extra="allow")
    sub: Name = Field(description="Who acts.", examples=["agt-0042"])
    role: str = Field(
        pattern=r"^[a-z_]{1,32}$", description="agent, supervisor, admin, partner or customer.", examples=["agent"]
    )
    team: Name | None = Field(None, description="A partner's team.", examples=["team-logistics-uk-south"])


@answers(401)
def token_claims(
    request: Request, authorization: Annotated[str | None, Header(max_length=4096)] = None
) -> dict[str, Any]:
    """FastAPI dependency: the claims of a bearer token signed with the service's SIGNING_KEY
    (``app.state.services.settings``), checked against ``Claims``; 401 saying why otherwise."""
    unauthorized = {"WWW-Authenticate": "Bearer"}
    try:
        clock = getattr(request.app.state, "clock", None)  # service_app sets it
        raw = auth.verify(
            auth.bearer(authorization),
            request.app.state.services.settings.signing_key,
            clock.now() if clock is not None else None,
        )
    except auth.InvalidToken as exc:
        raise HTTPException(401, {"message": f"Authorization: {exc}"}, unauthorized) from None
    try:
        Claims.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        claim = ".".join(str(p) for p in error["loc"]) or "claims"
        raise HTTPException(
            401,
            {"message": f"Authorization: the token's claim {claim!r}: {error['msg']}", "field": "Authorization"},
            unauthorized,
        ) from None
    return raw


def caller_address(request: Request) -> str:
    """FastAPI dependency: the caller's address, from X-Forwarded-For only behind a proxy listed in
    ``TRUSTED_PROXIES`` (``app.state.services.settings``)."""
    return client_address(
        request.client.host if request.client else None,
        ",".join(request.headers.getlist("x-forwarded-for")),
        request.app.state.services.settings.trusted_proxy_networks,
    )
