"""Every service's OpenAPI document and its /docs page: every answer documented, no CDN.

A route declares the refusals of its own (``responses=problems(404, 409)``); a dependency
declares what it may answer once (``@answers(401, 403)``, ``services.kernel.web``), and every route using it documents
that; a body may be too large (413) and may break a rule (422). Every 4xx/5xx is documented as
``application/problem+json`` with the ``Problem`` schema, as ``services.kernel.web`` answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import _get_api_route_for_openapi, get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import _APIRouteLike, iter_route_contexts  # a route context: no APIRoute, but like one
from fastapi.staticfiles import StaticFiles

from services.kernel.web import PROBLEM_JSON, Problem

DESCRIPTIONS = {
    400: "The body cannot be read (not JSON, or not UTF-8).",
    401: "No valid bearer token (or webhook secret or signature); `WWW-Authenticate` says which scheme.",
    403: "The caller may not do this (the role matrix, or an object that is not theirs).",
    404: "What the path names does not exist, or is not the caller's to see.",
    409: "It does not fit the current state (`current_state` says it), or someone acted first.",
    410: "Gone: the link has expired.",
    413: "The body is larger than the service accepts (`MAX_BODY_BYTES`).",
    422: "A field breaks a rule: `field` and `errors[]` name it and the rule.",
    429: "Too many requests of this kind; `Retry-After` says when to try again.",
    503: "A system this answer needs does not answer, or is too far behind; `Retry-After` says when to try again.",
}
#: Docs pages run Swagger UI's script from our origin only; nothing may frame them.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
VALIDATION_ERROR = "#/components/schemas/HTTPValidationError"  # FastAPI's, answered as a Problem
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: these refusals, each as problem details."""
    return {status: {"model": Problem, "description": DESCRIPTIONS.get(status, "Refused.")} for status in statuses}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _answers_of(route: _APIRouteLike) -> set[int]:
    found = {s for d in _dependencies(route.dependant) for s in getattr(d.call, "answers", ())}
    if route.body_field is not None:  # unreadable, too large, or breaking a rule
        found |= {400, 413, 422}
    return found


def _api_routes(app: FastAPI) -> Iterator[_APIRouteLike]:
    """Every route of the document, as it is served (prefix and router dependencies included)."""
    for context in iter_route_contexts(app.routes):
        route = _get_api_route_for_openapi(context)
        if route is not None and route.include_in_schema:
            yield route


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document with every refusal each route may answer, as problem details."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(components["Problem"].pop("$defs", {}))
    for route in _api_routes(app):
        for method in route.methods:
            operation = schema["paths"][route.path_format][method.lower()]
            responses = operation.setdefault("responses", {})
            for status in _answers_of(route):
                responses.setdefault(str(status), {"description": DESCRIPTIONS.get(status, "Refused.")})
            for status, response in responses.items():
                refs = {c.get("schema", {}).get("$ref") for c in response.get("content", {}).values()}
                if status[0] in "45" and refs <= {None, "#/components/schemas/Problem", VALIDATION_ERROR}:
                    response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema


def add_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI from a Python package (no CDN), under our security headers."""
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
    app.mount("/docs/assets", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    init = resources.files("services.kernel") / "static" / "swagger-init.js"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(
            f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{app.title}: API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body data-openapi="{app.openapi_url}"><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>""",
            headers=DOCS_HEADERS,
        )

    @app.get("/docs/init.js", include_in_schema=False)
    async def docs_init() -> HTMLResponse:
        return HTMLResponse(init.read_text(), media_type="text/javascript", headers=DOCS_HEADERS)
