"""Every API states its rules and answers in its OpenAPI document: bounded inputs, every refusal as
RFC 9457 problem details, and a /docs page that loads nothing from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.carrier.app import create_app as create_carrier
from services.intake.app import create_app as create_intake
from services.notify.app import create_app as create_notify
from services.routing.app import create_app as create_routing

APPS = {"intake": create_intake, "routing": create_routing, "carrier": create_carrier, "notify": create_notify}
INT64 = (-(2**63), 2**63 - 1)


@pytest.fixture(scope="module", params=sorted(APPS))
def service(request) -> tuple[str, Any]:
    return request.param, APPS[request.param]()


def resolve(node: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def leaves(node: dict[str, Any], document: dict[str, Any], where: str, seen=()) -> Iterator[tuple[str, dict]]:
    """Every typed leaf (string, integer, number) of a schema, with the path to it."""
    ref = node.get("$ref")
    if ref is not None and ref in seen:  # a model that contains itself
        return
    node = resolve(node, document)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            yield from leaves(option, document, where, (*seen, ref))
    for name, prop in node.get("properties", {}).items():
        yield from leaves(prop, document, f"{where}.{name}", (*seen, ref))
    if "items" in node:
        yield from leaves(node["items"], document, f"{where}[]", (*seen, ref))
    if isinstance(node.get("additionalProperties"), dict):
        yield from leaves(node["additionalProperties"], document, f"{where}{{}}", (*seen, ref))
    if node.get("type") in ("string", "integer", "number"):
        yield where, node


def inputs(document: dict[str, Any]) -> Iterator[tuple[str, dict]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from leaves(parameter["schema"], document, f"{name} {parameter['in']}:{parameter['name']}")
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield from leaves(media["schema"], document, f"{name} body")


def test_no_input_takes_an_integer_the_store_cannot_hold(service):
    name, app = service
    unbounded = [
        where
        for where, leaf in inputs(app.openapi())
        if leaf["type"] == "integer"
        and not (
            INT64[0] <= leaf.get("minimum", leaf.get("exclusiveMinimum", -(2**64)))
            and leaf.get("maximum", leaf.get("exclusiveMaximum", 2**64)) <= INT64[1]
        )
    ]

    assert unbounded == [], f"{name}: integers without 64-bit bounds: {unbounded}"


def test_every_input_string_has_a_length_limit_or_a_shape(service):
    name, app = service
    shapeless = [
        where
        for where, leaf in inputs(app.openapi())
        if leaf["type"] == "string" and not ({"maxLength", "enum", "const", "pattern", "format"} & set(leaf))
    ]

    assert shapeless == [], f"{name}: strings without maxLength, pattern or format: {shapeless}"


def test_every_refusal_is_documented_as_problem_details(service):
    name, app = service
    document = app.openapi()
    wrong = [
        (f"{m.upper()} {p}", status)
        for p, ops in document["paths"].items()
        for m, op in ops.items()
        for status, response in op["responses"].items()
        if status[0] == "4" and list(response.get("content", {})) != ["application/problem+json"]
    ]

    assert wrong == []
    assert {"type", "title", "status", "detail"} <= set(document["components"]["schemas"]["Problem"]["properties"])


def test_the_docs_page_loads_swagger_ui_from_our_origin_under_a_strict_policy(service):
    name, app = service
    client = TestClient(app)  # no lifespan: the page needs neither the broker nor the store
    page, script = client.get("/docs"), client.get("/docs/assets/swagger-ui-bundle.js")

    assert page.status_code == 200 and script.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    policy = page.headers["content-security-policy"]
    assert (
        "frame-ancestors 'none'" in policy
        and "script-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    assert page.headers["x-content-type-options"] == "nosniff"
