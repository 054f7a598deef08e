"""One trace from an HTTP request, through the store and a Kafka header, into the consumer's span:
the HTTP and Kafka spans are the instrumentation's (FastAPI's, FastStream's), the link through
the store is ours."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kernel.eventstore import Cause
from services.kernel.outbound import RecordClient
from services.kernel.runtime import Runtime
from services.kernel.telemetry import setup_tracing
from services.kernel.web import instrument
from tests.integration.story_events import NoteAdded
from tests.integration.support import wait_for

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_the_trace_of_a_request_continues_in_the_consumers_span(settings, topic, test_registry, db):
    spans = InMemorySpanExporter()
    setup_tracing("test", SimpleSpanProcessor(spans))
    runtime = Runtime.create(settings, test_registry, topic)
    consumed: list[str] = []

    async def note(event: NoteAdded, envelope) -> None:
        consumed.append(envelope.traceparent)

    runtime.consumer.subscribe(topic, f"{topic}-g", {NoteAdded: note})
    app = FastAPI()
    instrument(app)

    @app.post("/complaints/{complaint_id}/notes")
    async def add_note(complaint_id: str) -> dict:
        await runtime.store.append(
            complaint_id,
            0,
            [NoteAdded(complaint_id=complaint_id, n=1)],
            Cause.of_request(f"req-{complaint_id}", "add_note"),
        )
        return {"ok": True}

    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://intake") as client:
            response = await client.post(
                "/complaints/c-1/notes", headers={"traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"}
            )
        assert response.status_code == 200
        await wait_for(lambda: consumed)
    finally:
        await runtime.stop()

    traced = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == CALLER_TRACE]
    by_name = {s.name: s for s in traced}
    server, append = by_name["POST /complaints/{complaint_id}/notes"], by_name["eventstore.append"]
    [consumer] = [s for s in traced if s.attributes.get("cloudevents.event_type") == NoteAdded.ce_type()]
    by_id = {s.context.span_id: s for s in traced}
    assert append.parent.span_id == server.context.span_id
    producer = by_id[consumer.parent.span_id]
    assert (consumer.kind.name, producer.kind.name) == ("CONSUMER", "PRODUCER"), "FastStream's spans"
    assert producer.parent.span_id == append.context.span_id, "the relay publishes in the appending span's trace"
    assert consumed[0].split("-")[1] == CALLER_TRACE


async def test_an_outbound_call_carries_the_trace_it_is_made_in():
    """The order system (or a carrier, the telephony provider) sees our trace: httpx's
    instrumentation adds the header to every call, whichever client makes it."""
    seen: list[str | None] = []

    class Orders(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.headers.get("traceparent"))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Orders)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    setup_tracing("test")
    try:
        with trace.get_tracer("test").start_as_current_span("handling a complaint") as span:
            assert await RecordClient(f"http://127.0.0.1:{server.server_port}").get("orders", "o-1") is None
    finally:
        server.shutdown()

    assert seen and seen[0].split("-")[1] == format(span.get_span_context().trace_id, "032x")
