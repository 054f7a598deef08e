"""Kafka wiring in one place: client settings, topic creation, and the producer the kernel uses.

The producer is idempotent with ``acks=all``: librdkafka then keeps per-partition order even
across retries, and a message that finally fails takes every later one of its partition with it,
so the outbox relay never publishes a stream's commits out of order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from faststream.confluent import KafkaBroker

from services.kernel.settings import KernelSettings


#: librdkafka's own log lines (connection failures…) go through logging as JSON, not to stderr.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")


def producer_config(settings: KernelSettings) -> dict:
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 0,
        "message.timeout.ms": 30000,
        "client.id": f"{settings.service_name}-producer",
    }


def subscriber_options(settings: KernelSettings) -> dict:
    """Options of every FastStream subscriber of ours (low latency, quick group joins)."""
    return {
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.consumer_fetch_wait_ms,
        "session_timeout_ms": settings.consumer_session_timeout_ms,
        "heartbeat_interval_ms": max(500, settings.consumer_session_timeout_ms // 4),
        "polling_interval": 0.01,
    }


def make_broker(settings: KernelSettings) -> KafkaBroker:
    # FastStream's per-message access log would be two unstructured lines per event; ours are
    # JSON and say what matters (dead letters, retries), so its own log shows warnings only.
    faststream_log = logging.getLogger("faststream")
    faststream_log.setLevel(logging.WARNING)
    return KafkaBroker(settings.kafka_bootstrap_servers, client_id=settings.service_name,
                       enable_idempotence=True, acks="all", logger=faststream_log, log_level=logging.DEBUG)


def ensure_topics(settings: KernelSettings, topics: Iterable[str], partitions: int | None = None) -> None:
    """Create the topics (and their ``.dlq``) if they do not exist; existing ones are kept."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}, logger=LIBRDKAFKA_LOG)
    names = sorted({n for t in topics for n in (t, f"{t}.dlq")})
    existing = admin.list_topics(timeout=10).topics
    wanted = [NewTopic(n, num_partitions=partitions or settings.topic_partitions, replication_factor=1)
              for n in names if n not in existing]
    for name, future in admin.create_topics(wanted, operation_timeout=10).items() if wanted else []:
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


class DeliveryFailed(Exception):
    """The broker did not acknowledge a message in time; nothing is marked as done."""


class AsyncProducer:
    """confluent-kafka's producer with awaitable delivery reports."""

    def __init__(self, settings: KernelSettings) -> None:
        self._producer = Producer(producer_config(settings), logger=LIBRDKAFKA_LOG)
        self._polling = True
        # A daemon thread of its own, not the loop's executor: a producer someone forgot to close
        # (a failed test, a crashed start-up) must not keep the event loop from shutting down.
        self._poller = threading.Thread(target=self._poll, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._polling:
            self._producer.poll(0.05)

    def send(self, topic: str, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]]) -> asyncio.Future[Message]:
        """Queue one message; the future resolves with the broker's acknowledgement."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                loop.call_soon_threadsafe(_settle, future, DeliveryFailed(str(err)), None)
            else:
                loop.call_soon_threadsafe(_settle, future, None, msg)

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=report)
                return future
            except BufferError:  # local queue full: let the poller drain it
                self._producer.poll(0.05)

    async def flush(self, timeout: float = 30.0) -> int:
        return await asyncio.to_thread(self._producer.flush, timeout)

    async def close(self) -> None:
        await self.flush()
        self._polling = False
        await asyncio.to_thread(self._poller.join)


def _settle(future: asyncio.Future, error: Exception | None, msg: Message | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(msg)
