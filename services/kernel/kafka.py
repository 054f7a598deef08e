"""Kafka wiring in one place: client settings, topic creation, and the broker every service uses.

The broker's producer is the kernel's only one (the outbox relay, dead letters and the redrive
publish through ``broker.publish``). It is idempotent with ``acks=all``: librdkafka then keeps
per-partition order even across retries, and a message that finally fails takes every later one
of its partition with it, so the outbox relay never publishes a stream's commits out of order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Literal, TypedDict, cast, overload

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # what confluent_kafka.admin re-exports, unseen by mypy
from faststream.confluent import ConfluentConfig, KafkaBroker
from faststream.confluent.opentelemetry import KafkaTelemetryMiddleware

from contracts.envelope import H_CORRELATION
from services.kernel.settings import KernelSettings

#: librdkafka's own log lines (connection failures…) go through logging as JSON, not to stderr.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
#: librdkafka's settings, as confluent-kafka's clients take them.
ClientConfig = dict[str, str | int | float | bool]


def security_config(settings: KernelSettings) -> dict[str, str]:
    """librdkafka's TLS and SASL settings, the same for every Kafka client of ours (the broker's
    producer and consumers, admin clients, the dead-letter tools): one place, so that no client
    connects differently from the others and none is forgotten when the cluster changes."""
    protocol = settings.kafka_security_protocol
    config = {"security.protocol": protocol.lower()}  # FastStream's enum of it is lower case
    if protocol.startswith("SASL"):
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username or "",
            "sasl.password": settings.kafka_sasl_password or "",
        }
    if protocol.endswith("SSL"):
        config |= {
            key: value
            for key, value in (
                ("ssl.ca.location", settings.kafka_ssl_ca_location),
                ("ssl.certificate.location", settings.kafka_ssl_certificate_location),
                ("ssl.key.location", settings.kafka_ssl_key_location),
                ("ssl.key.password", settings.kafka_ssl_key_password),
            )
            if value
        }
    return config


def client_config(settings: KernelSettings) -> ClientConfig:
    """Where and how a plain confluent-kafka client (admin, consumer) connects."""
    return {"bootstrap.servers": settings.kafka_bootstrap_servers, **security_config(settings)}


class SubscriberOptions(TypedDict):
    """The keyword arguments of ``broker.subscriber`` that ``subscriber_options`` gives."""

    auto_offset_reset: Literal["earliest"]
    fetch_max_wait_ms: int
    session_timeout_ms: int
    heartbeat_interval_ms: int
    polling_interval: float


def subscriber_options(settings: KernelSettings) -> SubscriberOptions:
    """Options of every FastStream subscriber of ours (low latency, quick group joins)."""
    return {
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.consumer_fetch_wait_ms,
        "session_timeout_ms": settings.consumer_session_timeout_ms,
        "heartbeat_interval_ms": max(500, settings.consumer_session_timeout_ms // 4),
        "polling_interval": settings.consumer_poll_s,
    }


def make_broker(settings: KernelSettings) -> KafkaBroker:
    # FastStream's per-message access log would be two unstructured lines per event; ours are
    # JSON and say what matters (dead letters, retries), so its own log shows warnings only.
    faststream_log = logging.getLogger("faststream")
    faststream_log.setLevel(logging.WARNING)
    # linger_ms=0 (FastStream's default too): a relay round hands over its events at once, and
    # one waiting for more would only add latency to the hop.
    # One size limit for the producer and the topics (ensure_topics, infra/k8s/topics): a message
    # the broker took can be copied to its DLQ (docs/adr/0024).
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        max_request_size=settings.kafka_max_message_bytes,
        config=cast(ConfluentConfig, {**security_config(settings), **reconnect_options(settings)}),
        logger=faststream_log,
        log_level=logging.DEBUG,
        # Producer and consumer spans, and messaging metrics, by OpenTelemetry's conventions; the
        # global providers are looked up when used (telemetry.setup_tracing, meters).
        middlewares=[KafkaTelemetryMiddleware()],
    )


def reconnect_options(settings: KernelSettings) -> dict[str, int]:
    """librdkafka's reconnection to a broker that went away, for every client of ours.

    Its default backoff doubles up to 10 s, so a broker back after an outage was reached up to
    10 s late (18 s from restart to the first dial-out, issue 21); 1 s keeps the attempts cheap
    (its connection-failure lines are folded into one, services/kernel/outage.py) and the return
    quick. A connection that cannot be set up in 5 s (a broker that stopped answering) is dropped
    and tried again instead of waiting librdkafka's 30 s.
    """
    return {
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": settings.kafka_reconnect_backoff_max_ms,
        "socket.connection.setup.timeout.ms": 5000,
    }


def ensure_topics(settings: KernelSettings, topics: Iterable[str], partitions: int | None = None) -> None:
    """Create the topics (and their ``.dlq``) if they do not exist; existing ones are kept.

    They hold messages up to ``KAFKA_MAX_MESSAGE_BYTES``, our producer's limit too; the broker's
    own default is a few bytes above FastStream's producer default, so a message in between could
    be taken by the topic and never copied to its DLQ (issue 16). Their replicas and
    ``min.insync.replicas`` are the broker's defaults: one node has one replica, a cluster
    (``stack.sh --brokers 3``) three with two in sync, as production's topics (infra/k8s/topics)."""
    admin = AdminClient(client_config(settings), logger=LIBRDKAFKA_LOG)
    names = sorted({n for t in topics for n in (t, f"{t}.dlq")})
    existing = admin.list_topics(timeout=10).topics
    config = {"max.message.bytes": str(settings.kafka_max_message_bytes)}
    wanted = [
        NewTopic(n, num_partitions=partitions or settings.topic_partitions, config=config)
        for n in names
        if n not in existing
    ]
    for _name, future in admin.create_topics(wanted, operation_timeout=10).items() if wanted else []:
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


@overload
async def publish(
    broker: KafkaBroker,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]] | None,
    no_confirm: Literal[False] = False,
) -> Message | None: ...


@overload
async def publish(
    broker: KafkaBroker,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]] | None,
    no_confirm: Literal[True],
) -> asyncio.Future[Message | None]: ...


@overload
async def publish(
    broker: KafkaBroker,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]] | None,
    no_confirm: bool = False,
) -> asyncio.Future[Message | None] | Message | None: ...


async def publish(
    broker: KafkaBroker,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: Iterable[tuple[str, bytes | None]] | None,
    no_confirm: bool = False,
) -> asyncio.Future[Message | None] | Message | None:
    """Publish one Kafka message through the broker's producer.

    Without ``no_confirm`` it returns once the broker acknowledged the message; with it, as soon
    as the message is queued, with a future that resolves on the acknowledgement (or raises
    ``KafkaException``). A full local queue is waited out, as the poll loop drains it.
    """
    text = text_headers(headers)
    while True:
        try:
            # FastStream adds a correlation_id header of its own: give it ours, not a random one.
            return await broker.publish(
                value,
                topic,
                key=key,
                headers=text,
                no_confirm=no_confirm,
                correlation_id=text.get(H_CORRELATION) or text.get("correlation_id"),
            )
        except BufferError:
            await asyncio.sleep(0.05)


def position(msg: Message) -> tuple[str, int, int]:
    """A consumed message's topic, partition and offset: never None on a message (the stub's Optional
    is for error events, which may lack them)."""
    return cast(str, msg.topic()), cast(int, msg.partition()), cast(int, msg.offset())


def received_headers(msg: Message) -> list[tuple[str, bytes | None]]:
    """A consumed message's headers: always a list of (name, bytes or None) (the stub also allows
    the dict and text values a producer may be given)."""
    return cast(list[tuple[str, bytes | None]], msg.headers() or [])


def text_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Kafka headers as ``broker.publish`` takes them: text (ours are; a poison message's bytes
    that are not UTF-8 travel on with replacement characters)."""
    return {k: (v or b"").decode(errors="replace") for k, v in headers or ()}
