"""The outbox relay on a broker that acknowledges when told: pipelined, and per-commit acknowledgement."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException

from contracts.envelope import Envelope
from services.kernel.eventstore import Commit
from services.kernel.outbox import OutboxRelay

TOPIC = "complaints.test.v1"


class AcknowledgingBroker:
    """Stands in for FastStream's broker: ``publish(..., no_confirm=True)`` queues and returns the
    delivery future, which the test settles as the real broker's acknowledgement would."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.deliveries: list[asyncio.Future] = []

    async def publish(self, message, topic, *, key=None, headers=None, correlation_id=None, no_confirm=False):
        self.sent.append(
            {
                "value": message,
                "topic": topic,
                "key": key,
                "headers": headers,
                "correlation_id": correlation_id,
                "no_confirm": no_confirm,
            }
        )
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]


def envelope(event_id: str, complaint: str, type_: str = "complaints.test.NoteAdded") -> Envelope:
    return Envelope(
        id=event_id,
        type=type_,
        source="/services/test",
        subject=complaint,
        time=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        correlationid=f"corr-{complaint}",
        data={"complaint_id": complaint},
    )


def commit(commit_id: str, *events: Envelope) -> Commit:
    return Commit(
        id=commit_id,
        stream_id=events[0].subject,
        version=1,
        position=0,
        events=events,
        recorded_at=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
    )


async def test_a_round_queues_every_public_event_in_order_before_it_waits_for_any_acknowledgement():
    broker = AcknowledgingBroker()
    relay = OutboxRelay(broker, TOPIC, lambda t: t != "complaints.test.NoteCounted")
    commits = [
        commit("k-1", envelope("e-1", "c-1"), envelope("e-2", "c-1", "complaints.test.NoteCounted")),
        commit("k-2", envelope("e-3", "c-1"), envelope("e-4", "c-2")),
    ]

    round_ = asyncio.create_task(relay.publish(commits))
    await asyncio.sleep(0)  # the round runs up to its first wait

    assert [m["headers"]["ce_id"] for m in broker.sent] == ["e-1", "e-3", "e-4"]
    assert not round_.done(), "no commit is done before the broker acknowledged it"
    first = broker.sent[0]
    assert (first["topic"], first["key"], first["no_confirm"]) == (TOPIC, b"c-1", True)
    assert first["correlation_id"] == first["headers"]["ce_correlationid"] == "corr-c-1"
    for delivery in broker.deliveries:
        delivery.set_result(None)
    assert await round_ == {"k-1", "k-2"}


async def test_a_commit_with_one_unacknowledged_event_stays_pending_and_the_others_are_done():
    broker = AcknowledgingBroker()
    relay = OutboxRelay(broker, TOPIC, lambda t: True)
    commits = [commit("k-1", envelope("e-1", "c-1")), commit("k-2", envelope("e-2", "c-2"), envelope("e-3", "c-2"))]

    round_ = asyncio.create_task(relay.publish(commits))
    await asyncio.sleep(0)
    broker.deliveries[0].set_result(None)
    broker.deliveries[1].set_result(None)
    broker.deliveries[2].set_exception(KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT)))

    assert await round_ == {"k-1"}


async def test_an_event_the_producer_refuses_keeps_its_commit_and_the_later_ones_pending():
    class RefusingBroker(AcknowledgingBroker):
        async def publish(self, message, topic, **options):
            if options["headers"]["ce_id"] == "e-2":
                raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
            return await super().publish(message, topic, **options)

    broker = RefusingBroker()
    relay = OutboxRelay(broker, TOPIC, lambda t: True)
    round_ = asyncio.create_task(
        relay.publish(
            [
                commit("k-1", envelope("e-1", "c-1")),
                commit("k-2", envelope("e-2", "c-1")),
                commit("k-3", envelope("e-3", "c-1")),
            ]
        )
    )
    await asyncio.sleep(0)
    assert [m["headers"]["ce_id"] for m in broker.sent] == ["e-1"], "nothing after the refused event"
    broker.deliveries[0].set_result(None)

    assert await round_ == {"k-1"}
