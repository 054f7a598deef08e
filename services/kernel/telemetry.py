"""Tracing and structured logs: one trace from an HTTP request through the store and Kafka.

HTTP spans, in and out, come from OpenTelemetry's instrumentation packages (FastAPI, httpx), Kafka's
from FastStream's ``KafkaTelemetryMiddleware`` (services/kernel/kafka.py). Ours is only what they
cannot know: the W3C ``traceparent`` of the span that appends a commit is stored with the commit,
and the relay publishes the event inside it (``remote_parent``), however long after (a restart, a
rebuild): FastStream's producer span continues that trace into the ``traceparent`` header, and its
consumer span on the other side continues it again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from opentelemetry import context, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from services.kernel import meters  # noqa: F401 - sets the HTTP semantic conventions first
from services.kernel.redaction import redact

_propagator = TraceContextTextMapPropagator()


def setup_tracing(service_name: str, *processors: SpanProcessor) -> TracerProvider:
    """Install a tracer provider for this process (once); extra processors are for tests.

    ``OTEL_TRACES_EXPORTER=console`` prints spans; an OTLP exporter is used when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the exporter package is installed.
    """
    # Every outbound HTTP call (carriers, telephony, the order system, accounts) gets a client span
    # and carries its traceparent, whichever client makes it.
    if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().instrument()
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        for p in processors:
            current.add_span_processor(p)
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    for p in processors:
        provider.add_span_processor(p)
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            logging.getLogger(__name__).warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp is not installed"
            )
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def parent_context(traceparent: str | None) -> context.Context | None:
    """The context a new span should start in: the active span's if there is one, else the remote
    span named by ``traceparent`` (a command whose cause came from another trace), else a new trace."""
    if trace.get_current_span().get_span_context().is_valid or not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, or None outside any span."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def remote_parent(traceparent: str | None) -> Iterator[None]:
    """The remote span named by ``traceparent`` (if any) as the current context: a span started
    inside continues its trace (FastStream's producer span, when the relay publishes a stored event)."""
    token = context.attach(_propagator.extract({"traceparent": traceparent} if traceparent else {}))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def continued_span(
    name: str, traceparent: str | None, kind: SpanKind = SpanKind.CONSUMER, attributes: Attributes = None
) -> Iterator[Span]:
    """A span whose parent is the remote span named by ``traceparent`` (if any)."""
    with (
        remote_parent(traceparent),
        trace.get_tracer("services.kernel").start_as_current_span(name, kind=kind, attributes=attributes or {}) as span,
    ):
        yield span


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the trace id when a span is active, credentials redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = format(ctx.trace_id, "032x")
        for key, value in getattr(record, "fields", {}).items():
            out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str))  # every line, whoever wrote it


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # FastStream gives its logger a coloured text handler of its own at import; send its records
    # (and librdkafka's, which it relays) through ours instead, as JSON.
    for name in ("faststream", "faststream.access", "uvicorn", "uvicorn.error", "uvicorn.access"):
        own = logging.getLogger(name)
        own.handlers.clear()
        own.propagate = True
