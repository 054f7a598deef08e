"""Dead letters: messages a consumer could not process, kept on ``<topic>.dlq`` with the reason.

Listing reads the DLQ without moving any consumer group; re-driving copies each letter back to
its original topic (without the ``dlq_*`` headers) through the kernel's broker, and commits the
redrive group's offsets, so a letter is re-driven once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from services.kernel.kafka import LIBRDKAFKA_LOG, client_config, make_broker, position, publish, received_headers
from services.kernel.settings import KernelSettings

#: The redrive's group (after CONSUMER_GROUP_PREFIX, so the services' prefix ACL covers it): its
#: committed offsets are the letters already sent back.
REDRIVE_GROUP = "dlq-redrive"
#: How long the broker may take to acknowledge one re-driven letter before the redrive stops.
REDRIVE_ACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class DeadLetter:
    """Why a message could not be processed; travels as ``dlq_*`` headers with the original."""

    reason: str
    error_class: str

    def headers(self, msg: Message) -> list[tuple[str, bytes]]:
        topic, partition, offset = position(msg)
        extra = {
            "dlq_reason": self.reason[:2000],
            "dlq_error_class": self.error_class,
            "dlq_original_topic": topic,
            "dlq_original_partition": str(partition),
            "dlq_original_offset": str(offset),
            "dlq_original_size": str(len(msg.value() or b"")),
            "dlq_failed_at": datetime.now(UTC).isoformat(),
        }
        kept = [(k, v or b"") for k, v in received_headers(msg) if not k.startswith("dlq_")]
        return kept + [(k, v.encode()) for k, v in extra.items()]

    def copy(self, msg: Message, limit: int) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The letter's value and headers, within ``limit`` bytes (KAFKA_MAX_MESSAGE_BYTES).

        A message the topic took can be a little too large for its DLQ once the reason is added;
        a letter that could not be sent would block its partition for ever (issue 16). So the value
        is cut to fit, and ``dlq_truncated`` says so (``dlq_original_size`` has the whole size);
        headers too large to leave room for anything are dropped but for ours.
        """
        value, headers = msg.value() or b"", self.headers(msg)
        if _size(headers) > limit // 2:
            headers = [(k, v) for k, v in headers if k.startswith("dlq_")] + [("dlq_headers_dropped", b"true")]
        room = limit - LETTER_OVERHEAD - len(msg.key() or b"") - _size(headers)
        if len(value) > room:
            value, headers = value[: max(room, 0)], headers + [("dlq_truncated", b"true")]
        return value, headers


#: What a record, its batch and the headers FastStream adds take beyond key, value and our headers:
#: a generous bound, so that a cut letter is never refused for its size.
LETTER_OVERHEAD = 4096


def _size(headers: list[tuple[str, bytes]]) -> int:
    # As they will be sent: as text (kafka.text_headers), where a byte that is not UTF-8 takes three.
    return sum(len(k) + len(v.decode(errors="replace").encode()) + 10 for k, v in headers)


@dataclass(frozen=True)
class StoredLetter:
    """A message as found on a DLQ."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name and v), None)

    @property
    def original_headers(self) -> list[tuple[str, bytes | None]]:
        return [(k, v) for k, v in self.headers if not k.startswith("dlq_")]


def _consumer(settings: KernelSettings, group: str, commit: bool) -> Consumer:
    return Consumer(
        {
            **client_config(settings),
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
            "session.timeout.ms": settings.consumer_session_timeout_ms,
            "client.id": f"{settings.service_name}-dlq{'-redrive' if commit else ''}",
        },
        logger=LIBRDKAFKA_LOG,
    )


def read_letters(
    settings: KernelSettings, dlq_topic: str, group: str | None = None, timeout_s: float = 10.0
) -> Iterator[tuple[StoredLetter, Consumer]]:
    """Every letter from the group's position (a throwaway group: from the start) to the end."""
    name = group or f"dlq-list-{uuid.uuid4().hex[:8]}"
    consumer = _consumer(settings, settings.consumer_group_prefix + name, group is not None)
    try:
        meta = consumer.list_topics(dlq_topic, timeout=timeout_s).topics.get(dlq_topic)
        if meta is None or meta.error is not None:
            return
        partitions = [TopicPartition(dlq_topic, p) for p in meta.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=timeout_s)[1] for tp in partitions}
        remaining = {p for p, end in ends.items() if end > 0}
        consumer.subscribe([dlq_topic])
        deadline = datetime.now(UTC).timestamp() + timeout_s
        while remaining and datetime.now(UTC).timestamp() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if error := msg.error():
                if msg.partition() is not None and error.code() == -191:  # partition EOF
                    remaining.discard(msg.partition())
                continue
            _, partition, offset = position(msg)
            yield StoredLetter(partition, offset, msg.key(), msg.value(), list(received_headers(msg))), consumer
            if offset + 1 >= ends.get(partition, 0):
                remaining.discard(partition)
    finally:
        consumer.close()


def list_letters(settings: KernelSettings, dlq_topic: str) -> list[StoredLetter]:
    return [letter for letter, _ in read_letters(settings, dlq_topic)]


async def redrive(settings: KernelSettings, dlq_topic: str) -> int:
    """Send every letter not yet re-driven back to its original topic; returns how many.

    Each letter's offset is committed only after the broker acknowledged its copy; one that is
    not acknowledged in time stops the redrive with a ``RuntimeError`` (it is sent again next time).
    """
    broker = make_broker(settings)
    await broker.connect()
    count = 0
    try:
        for letter, consumer in read_letters(settings, dlq_topic, group=REDRIVE_GROUP):
            target = letter.header("dlq_original_topic") or dlq_topic.removesuffix(".dlq")
            try:
                await asyncio.wait_for(
                    publish(broker, target, letter.key, letter.value or b"", letter.original_headers),
                    REDRIVE_ACK_TIMEOUT_S,
                )
            except (KafkaException, TimeoutError) as exc:
                raise RuntimeError(f"could not re-drive offset {letter.offset} to {target}: {exc}") from None
            consumer.commit(
                offsets=[TopicPartition(dlq_topic, letter.partition, letter.offset + 1)], asynchronous=False
            )
            count += 1
    finally:
        await broker.stop()
    return count
