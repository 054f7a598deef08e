"""The service's metrics, for Prometheus at ``GET /metrics``.

OpenTelemetry's metrics API with its Prometheus exporter, so that one mechanism carries them all:
the FastAPI and httpx instrumentation packages record HTTP in and out by themselves
(``http_server_request_duration_seconds`` per route and status; ``http_client_request_duration_seconds``
per ``server_address``: each carrier, the telephony provider, the order and account systems); the
kernel records what only it knows, below. Names as Prometheus shows them:

- ``complaints_events_appended_total{type}``: events written to the service's log;
- ``complaints_store_conflicts_total{outcome}``: optimistic-concurrency conflicts, ``retried`` or
  ``gave_up``;
- ``complaints_relay_backlog``: log entries waiting to be published/projected (last round's count);
- ``complaints_relay_publish_duration_seconds``: one round's publish, until the broker acknowledged;
- ``complaints_consumer_handling_duration_seconds{type,outcome}``: a consumed event's handler,
  ``ok`` or ``error``;
- ``complaints_consumer_waiting_seconds{topic,partition}``: how long the oldest message taken from
  each partition waits to be committed (0: none waits) — the consumer's lag as time;
- ``complaints_downstream_behind_seconds{part}``: how long a request accepted now would wait behind
  what is queued (intake's "call me" admission, kernel/lag.py): ``unpublished`` (how long this
  service's latest appends waited to be published) and each consumer group downstream;
- ``complaints_dead_letters_total{topic,error_class}``: messages copied to a DLQ;
- ``complaints_consumer_redeliveries_total{topic}``: messages put back after a transient failure;
- ``complaints_outbound_calls_total{target,outcome}``: calls to the outside world that are not HTTP
  (SMTP), with their errors.

Each process has one registry; Kubernetes scrapes every pod (the ServiceMonitor in infra/k8s).
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Histogram, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest

# HTTP metrics by the stable semantic conventions (seconds, ``http_route``), not the old ones the
# instrumentation packages still default to. The packages read it once, at the first instrumented
# app or client: so it is set on import of this module, which kernel/web.py and kernel/telemetry.py
# import before they instrument anything.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

_meter = metrics.get_meter("services.kernel")

events_appended = _meter.create_counter(
    "complaints.events.appended", unit="1", description="Events written to the service's log, by type."
)
conflicts = _meter.create_counter(
    "complaints.store.conflicts",
    unit="1",
    description="Optimistic-concurrency conflicts on a stream: retried, or given up after the last try.",
)
publish_duration = _meter.create_histogram(
    "complaints.relay.publish.duration",
    unit="s",
    description="One relay round's publish, from the first event queued to the broker's last acknowledgement.",
)
handling_duration = _meter.create_histogram(
    "complaints.consumer.handling.duration",
    unit="s",
    description="Handling one consumed event: handled, dead-lettered or retried (redelivered).",
)
dead_letters = _meter.create_counter(
    "complaints.dead.letters", unit="1", description="Messages copied to a dead-letter topic, by topic and error."
)
redeliveries = _meter.create_counter(
    "complaints.consumer.redeliveries",
    unit="1",
    description="Consumed messages put back for a redelivery after a transient failure, by topic.",
)
outbound_calls = _meter.create_counter(
    "complaints.outbound.calls",
    unit="1",
    description="Calls to the outside world other than HTTP (HTTP has its own), by target and outcome.",
)

#: The relay's backlog as its last round saw it (set by the log follower, read at each scrape).
_backlog = {"entries": 0}
#: A source of ``complaints_consumer_waiting_seconds``, giving ((topic, partition), seconds) pairs.
WaitingSource = Callable[[], Iterable[tuple[tuple[str, int], float]]]
#: The sources, weakly held, so that a consumer that is gone (tests make many) is not kept nor reported.
_waiting: list[weakref.WeakMethod[WaitingSource]] = []


#: Sources of ``complaints_downstream_behind_seconds``: part -> seconds (weakly held, as above).
BehindSource = Callable[[], dict[str, float]]
_behind: list[weakref.WeakMethod[BehindSource]] = []


def _observe_backlog(_options: CallbackOptions) -> Iterator[Observation]:
    yield Observation(_backlog["entries"])


def _observe_waiting(_options: CallbackOptions) -> Iterator[Observation]:
    _waiting[:] = [ref for ref in _waiting if ref() is not None]
    for ref in list(_waiting):
        for (topic, partition), seconds in (ref() or (lambda: []))():
            yield Observation(seconds, {"topic": topic, "partition": str(partition)})


_meter.create_observable_gauge(
    "complaints.relay.backlog",
    [_observe_backlog],
    unit="1",
    description="Log entries waiting to be published and projected.",
)


def _observe_behind(_options: CallbackOptions) -> Iterator[Observation]:
    _behind[:] = [ref for ref in _behind if ref() is not None]
    for ref in list(_behind):
        for part, seconds in (ref() or dict)().items():
            yield Observation(seconds, {"part": part})


_meter.create_observable_gauge(
    "complaints.downstream.behind",
    [_observe_behind],
    unit="s",
    description="How long a request accepted now would wait behind what is queued, by part "
    "(this service's unpublished log, each consumer group downstream).",
)
_meter.create_observable_gauge(
    "complaints.consumer.waiting",
    [_observe_waiting],
    unit="s",
    description="How long the oldest message taken from a partition waits to be "
    "committed (the consumer's lag, as time).",
)


def record_backlog(entries: int) -> None:
    _backlog["entries"] = entries


def watch_waiting(source: WaitingSource) -> None:
    """Report ``source``'s partitions in ``complaints_consumer_waiting_seconds``."""
    _waiting.append(weakref.WeakMethod(source))


def watch_behind(source: BehindSource) -> None:
    """Report ``source``'s parts in ``complaints_downstream_behind_seconds``."""
    _behind.append(weakref.WeakMethod(source))


@contextmanager
def timed(histogram: Histogram, attributes: dict[str, str]) -> Iterator[dict[str, str]]:
    """Record the block's duration in ``histogram``; the block may add to ``attributes`` (an outcome)."""
    started = time.perf_counter()
    try:
        yield attributes
        attributes.setdefault("outcome", "ok")
    except BaseException:
        attributes["outcome"] = "error"
        raise
    finally:
        histogram.record(time.perf_counter() - started, attributes)


def setup_metrics(service_name: str) -> None:
    """Install this process's meter provider, exported to Prometheus's registry (once)."""
    if isinstance(metrics.get_meter_provider(), MeterProvider):
        return
    metrics.set_meter_provider(
        MeterProvider(
            resource=Resource.create({"service.name": service_name}),
            metric_readers=[PrometheusMetricReader()],
            # Prometheus' text format (what /metrics serves) carries no exemplars: sampling one
            # with every measurement (about 1-2 % of routing's CPU in a burst) was for nothing.
            exemplar_filter=AlwaysOffExemplarFilter(),
        )
    )


def exposition() -> bytes:
    """The Prometheus text exposition of this process's metrics (kernel/prometheus.py serves it)."""
    return generate_latest(REGISTRY)
