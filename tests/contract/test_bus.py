"""The bus's contract: the consumer's rules hold on Kafka and on FastStream's in-process broker
(``TestKafkaBroker``) alike, so that a test of handlers can run on either.

Each test runs twice: on the real broker `make test` starts, and in process. Both keep their
inbox in the document store (the rules are about what is recorded there).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.confluent import KafkaBroker, TestKafkaBroker
from faststream.confluent.annotations import KafkaMessage
from pymongo import AsyncMongoClient

from contracts.envelope import to_kafka
from services.kernel.consumer import Consumer, Inbox
from services.kernel.eventstore import Cause, EventStore
from services.kernel.kafka import ensure_topics, make_broker, publish
from services.kernel.settings import KernelSettings
from tests.integration.story_events import NoteAdded, NoteCounted, registry
from tests.integration.support import wait_for

pytestmark = pytest.mark.integration  # the inbox is in the document store, on either bus

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")


@dataclass
class Bus:
    """A consumer on one kind of bus, its topic, and the dead letters that reach ``<topic>.dlq``."""

    kind: str
    settings: KernelSettings
    broker: KafkaBroker
    consumer: Consumer
    topic: str
    letters: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, event: Any, event_id: str, **headers: bytes) -> None:
        """Publish ``event`` as its producer would; ``headers`` replace the CloudEvents ones."""
        envelope = self.consumer.store.envelope(event, event_id, Cause.of_request(event_id, "t"), datetime.now(UTC))
        key, value, original = to_kafka(envelope)
        await self.send_raw(key, value, [(k, headers.get(k, v)) for k, v in original])

    async def send_raw(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await publish(self.broker, self.topic, key, value, headers)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        @self.broker.subscriber(f"{self.topic}.dlq", group_id=f"{self.topic}-letters", auto_offset_reset="earliest")
        async def letter(body: Any, message: KafkaMessage) -> None:
            self.letters.append(message.headers)

        if self.kind == "in-process":
            async with TestKafkaBroker(self.broker):
                yield
            return
        ensure_topics(self.settings, [self.topic], partitions=2)
        await self.broker.start()
        try:
            yield
        finally:
            await self.consumer.drain(5)
            await self.broker.stop()

    async def inbox(self) -> set[str]:
        return {doc["_id"] async for doc in self.consumer.inbox.entries.find({}, {"_id": 1})}


@pytest.fixture(params=["in-process", "kafka"])
async def bus(request) -> AsyncIterator[Bus]:
    unique = uuid.uuid4().hex[:10]
    settings = KernelSettings(
        service_name=f"test-{unique}",
        kafka_bootstrap_servers=KAFKA,
        mongodb_url=MONGO,
        mongodb_database=f"test_{unique}",
        retry_backoff_max_s=0.5,
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO, tz_aware=True)
    db = client[settings.database_name]
    store = EventStore(db, "/services/test", registry)
    await store.setup()
    store.projected = lambda ce_type: False  # no projections: nothing is pending work
    inbox = Inbox(db, store)
    await inbox.setup()
    broker = make_broker(settings)
    yield Bus(request.param, settings, broker, Consumer(settings, broker, store, inbox), f"test.{unique}.v1")
    await client.drop_database(settings.database_name)
    await client.close()


def note(n: int, complaint: str = "c-1") -> NoteAdded:
    return NoteAdded(complaint_id=complaint, n=n)


async def test_each_type_goes_to_its_own_handler_in_the_order_of_its_key(bus):
    added, counted = [], []

    async def on_added(event: NoteAdded, envelope) -> None:
        added.append((event.complaint_id, event.n))

    async def on_counted(event: NoteCounted, envelope) -> None:
        counted.append(envelope.id)

    bus.consumer.subscribe(bus.topic, f"{bus.topic}-g", {NoteAdded: on_added, NoteCounted: on_counted})
    async with bus.running():
        for n in range(1, 6):
            await bus.send(note(n, "c-1"), f"a-{n}")
            await bus.send(note(n, "c-2"), f"b-{n}")
        await bus.send(NoteCounted(complaint_id="c-1", n=5), "count-1")
        await wait_for(lambda: len(added) == 10 and counted)
    assert [n for c, n in added if c == "c-1"] == [1, 2, 3, 4, 5]
    assert [n for c, n in added if c == "c-2"] == [1, 2, 3, 4, 5]
    assert counted == ["count-1"]


async def test_an_event_delivered_twice_is_handled_once(bus):
    handled = []

    async def on_added(event: NoteAdded, envelope) -> None:
        handled.append(envelope.id)

    bus.consumer.subscribe(bus.topic, f"{bus.topic}-g", {NoteAdded: on_added})
    async with bus.running():
        await bus.send(note(1), "e-1")
        await bus.send(note(1), "e-1")  # the producer's retry, or the relay's after a crash
        await bus.send(note(2), "e-2")
        await wait_for(lambda: "e-2" in handled)
        assert await wait_for(bus.inbox) == {"e-1", "e-2"}
    assert handled == ["e-1", "e-2"]


async def test_a_message_that_is_not_ours_is_a_dead_letter_and_the_next_one_is_handled(bus):
    handled = []

    async def on_added(event: NoteAdded, envelope) -> None:
        handled.append(event.n)

    bus.consumer.subscribe(bus.topic, f"{bus.topic}-g", {NoteAdded: on_added})
    async with bus.running():
        await bus.send_raw(b"c-1", b'{"n": 1}', [("ce_type", NoteAdded.ce_type().encode())])  # no id, no source
        await bus.send(note(2), "e-2", ce_type=b"complaints.test.Nobody.v1")
        await bus.send(note(3), "e-3")
        await wait_for(lambda: handled and len(bus.letters) == 2)
    assert handled == [3]
    classes = sorted(letter["dlq_error_class"] for letter in bus.letters)
    assert classes == ["MalformedMessage", "UnknownEventType"]


async def test_a_handler_that_rejects_its_event_sends_it_to_the_dead_letters_with_the_reason(bus):
    async def on_added(event: NoteAdded, envelope) -> None:
        if event.n == 13:
            raise ValueError("notes are never numbered 13")

    bus.consumer.subscribe(bus.topic, f"{bus.topic}-g", {NoteAdded: on_added})
    async with bus.running():
        await bus.send(note(13), "e-13")
        await bus.send(note(14), "e-14")
        await wait_for(lambda: bus.letters)
        assert await wait_for(lambda: _has(bus, "e-14")) == {"e-14"}
    [letter] = bus.letters
    assert letter["dlq_error_class"] == "ValueError"
    assert letter["dlq_reason"].startswith("notes are never numbered 13")


@pytest.mark.parametrize("record_all", [False, True])
async def test_a_type_without_a_handler_is_recorded_only_by_a_service_that_keeps_every_event(bus, record_all):
    async def on_added(event: NoteAdded, envelope) -> None:
        pass

    bus.consumer.subscribe(bus.topic, f"{bus.topic}-g", {NoteAdded: on_added}, record_all=record_all)
    async with bus.running():
        await bus.send(NoteCounted(complaint_id="c-1", n=1), "count-1")
        await bus.send(note(1), "e-1")
        assert await wait_for(lambda: _has(bus, "e-1")) == ({"e-1", "count-1"} if record_all else {"e-1"})
    assert not bus.letters


async def _has(bus: Bus, *ids: str) -> set[str]:
    found = await bus.inbox()
    return found if set(ids) <= found else set()
