"""A message waiting for a retry is never committed past: acknowledging a message of another
partition meanwhile commits that partition only, so a crash before the retry loses nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer, TopicPartition
from pymongo.errors import AutoReconnect

from contracts.envelope import to_kafka
from services.kernel.eventstore import Cause
from services.kernel.runtime import Runtime
from tests.integration.story_events import NoteAdded
from tests.integration.support import kafka_config, wait_for


def committed(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    reader = Consumer(kafka_config(bootstrap, **{"group.id": group, "enable.auto.commit": False}))
    try:
        offsets = reader.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in offsets}
    finally:
        reader.close()


async def test_acking_another_partition_while_a_message_waits_for_its_retry_does_not_commit_past_it(
    settings, topic, test_registry, db
):
    runtime = Runtime.create(settings, test_registry, topic)
    store_is_back, attempts, handled = asyncio.Event(), [], []

    async def note(event: NoteAdded, envelope) -> None:
        if event.n == 1 and not store_is_back.is_set():
            attempts.append(1)
            raise AutoReconnect("the store is restarting")  # transient: retried, not dead-lettered
        handled.append(event.n)

    group = f"{topic}-g"
    runtime.consumer.subscribe(topic, group, {NoteAdded: note})
    await runtime.start()
    try:
        producer = Producer(kafka_config(settings.kafka_bootstrap_servers))

        def put(n: int, partition: int) -> None:
            envelope = runtime.store.envelope(
                NoteAdded(complaint_id=f"c-{n}", n=n), f"e-{n}", Cause.of_request(f"r-{n}", "t"), datetime.now(UTC)
            )
            key, value, headers = to_kafka(envelope)
            producer.produce(topic, value, key, partition=partition, headers=headers)
            producer.flush(10)

        put(1, 0)
        await wait_for(lambda: attempts, timeout=60)  # polled once and failed: waiting for its retry
        put(2, 1)
        await wait_for(lambda: handled == [2] and len(attempts) >= 2, timeout=60)

        async def partition_1_committed() -> dict[int, int] | None:
            # handled, then recorded, then committed: the commit lands a moment after the handler
            offsets = await asyncio.to_thread(committed, settings.kafka_bootstrap_servers, group, topic, [0, 1])
            return offsets if offsets[1] == 1 else None

        while_retrying = await wait_for(partition_1_committed, timeout=30)  # partition 0's message still failing
        store_is_back.set()
        await wait_for(lambda: sorted(handled) == [1, 2], timeout=60)
        await wait_for(lambda: committed(settings.kafka_bootstrap_servers, group, topic, [0]) == {0: 1}, timeout=30)
    finally:
        await runtime.stop()

    assert while_retrying[1] == 1, "the handled message of partition 1 is committed"
    assert while_retrying[0] < 1, f"partition 0 committed past the message still being retried: {while_retrying}"
