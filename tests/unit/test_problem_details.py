"""One error format for every service: RFC 9457 problem details from the kernel's one handler."""

from __future__ import annotations

import socket
import threading

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from services.kernel.errors import DomainError, TooMany
from services.kernel.web import problem_body, service_app
from services.notify.app import create_app as create_notify
from services.notify.settings import NotifySettings


class Full(DomainError):
    code, status = "queue_full", 409

    def extensions(self) -> dict:
        return {"current_state": "full"}


class Thing(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = Field(ge=1, le=5)


def an_app() -> FastAPI:
    app = service_app("Example", "Refusals of every kind.", None, None, 200)

    @app.post("/things")
    async def make(thing: Thing) -> dict:
        return thing.model_dump()

    @app.post("/full")
    async def full() -> dict:
        raise Full("the queue is full")

    @app.post("/busy")
    async def busy() -> dict:
        raise TooMany("calls: too many; try again later", retry_after_s=30)

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    return app


def test_a_validation_error_names_every_field_and_rule_as_problem_details():
    answer = TestClient(an_app()).post("/things", json={"name": "", "count": 9})

    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert (body["type"], body["title"], body["status"], body["field"]) == (
        "urn:complaints:problem:invalid_request",
        "Unprocessable Entity",
        422,
        "name",
    )
    assert [(e["field"], e["type"]) for e in body["errors"]] == [
        ("name", "string_too_short"),
        ("count", "less_than_equal"),
    ]
    assert body["detail"].startswith("name: String should have at least 1 character; count: ")


def test_a_body_that_is_not_json_is_refused_naming_the_body():
    answer = TestClient(an_app()).post("/things", content=b'{"name": ', headers={"content-type": "application/json"})

    assert answer.status_code == 422 and answer.json()["field"] == "body", answer.text
    assert answer.json()["detail"].startswith("body: not valid JSON")


def test_a_domain_refusal_answers_with_its_kind_s_status_code_and_extensions():
    client = TestClient(an_app())

    full, busy = client.post("/full"), client.post("/busy")

    assert (full.status_code, full.json()["code"], full.json()["current_state"]) == (409, "queue_full", "full")
    assert busy.status_code == 429 and busy.headers["retry-after"] == "30"
    assert busy.json()["detail"] == busy.json()["message"] == "calls: too many; try again later"


def test_a_body_over_the_limit_is_a_413_problem():
    answer = TestClient(an_app()).post(
        "/things", content=b"{" + b" " * 300 + b"}", headers={"content-type": "application/json"}
    )

    assert answer.status_code == 413 and answer.json()["field"] == "body"


def test_a_body_sent_in_chunks_without_a_length_is_read_up_to_the_limit_and_no_further():
    def chunks(*parts: bytes):
        yield from parts  # no Content-Length: sent chunked

    client, json = TestClient(an_app()), {"content-type": "application/json"}
    small = client.post("/things", content=chunks(b'{"name": "bolt",', b' "count": 2}'), headers=json)
    large = client.post("/things", content=chunks(b"{", b" " * 150, b" " * 150, b"}"), headers=json)

    assert "content-length" not in small.request.headers
    assert small.status_code == 200 and small.json()["name"] == "bolt"
    assert large.status_code == 413 and large.json()["field"] == "body"


def test_a_problem_body_is_what_the_rfc_names_plus_our_code_and_field():
    assert problem_body(404, "case: there is no case 'c-1'", code="not_found", field="complaint_id") == {
        "type": "urn:complaints:problem:not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "case: there is no case 'c-1'",
        "message": "case: there is no case 'c-1'",
        "code": "not_found",
        "field": "complaint_id",
    }


def test_after_a_server_error_the_connection_stays_open_for_the_next_request():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(an_app(), host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            request = b"GET /boom HTTP/1.1\r\nHost: test\r\n\r\n"
            connection.sendall(request * 2)  # both on one keep-alive connection
            received = b""
            while received.count(b"HTTP/1.1 500") < 2 and (chunk := connection.recv(65536)):
                received += chunk
    finally:
        server.should_exit = True
        thread.join(10)

    assert received.count(b"HTTP/1.1 500") == 2, received
    assert b"application/problem+json" in received and b"a bug" not in received


def test_a_notification_about_an_empty_complaint_id_is_refused_naming_it():
    settings = NotifySettings(inbound_webhook_secret="a-webhook-secret-of-enough-length")
    client = TestClient(create_notify(settings))  # no lifespan: the refusal comes before any I/O

    answer = client.post(
        "/api/notifications",
        headers={"Authorization": f"Bearer {settings.inbound_webhook_secret}"},
        json={
            "request_id": "reminder-0001",
            "template": "seller_login_reminder",
            "recipient": "sell-00311",
            "address": "lena@example.com",
            "complaint_id": "",
            "context": {"login_url": "https://sellers.example.com/login"},
        },
    )

    assert answer.status_code == 422 and answer.json()["field"] == "complaint_id", answer.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
