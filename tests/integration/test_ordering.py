"""Events of one complaint are consumed in the order they were appended, whatever the partition."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from services.kernel.eventstore import Cause
from services.kernel.runtime import Runtime
from tests.integration.story_events import NoteAdded
from tests.integration.support import wait_for

COMPLAINTS, NOTES = 1000, 3


async def test_each_complaints_events_arrive_in_append_order_across_six_partitions(settings, topic, test_registry, db):
    assert settings.topic_partitions == 6
    runtime = Runtime.create(settings, test_registry, topic)
    received: dict[str, list[int]] = defaultdict(list)
    partitions: set[int] = set()

    async def note(event: NoteAdded, envelope) -> None:
        received[event.complaint_id].append(event.n)

    runtime.consumer.subscribe(topic, f"{topic}-g", {NoteAdded: note})
    await runtime.start()

    async def file_notes(complaint: str) -> None:
        for n in range(1, NOTES + 1):  # each append waits for the previous one: that is the order
            await runtime.store.append(
                complaint, n - 1, [NoteAdded(complaint_id=complaint, n=n)], Cause.of_request(f"{complaint}-{n}", "test")
            )

    try:
        await asyncio.gather(*(file_notes(f"c-{i}") for i in range(COMPLAINTS)))
        await wait_for(lambda: _count(received, COMPLAINTS * NOTES), timeout=180, every=0.5)
        async for entry in runtime.inbox.entries.find({}, {"partition": 1}):
            partitions.add(entry["partition"])
    finally:
        await runtime.stop()
    assert len(partitions) == 6, f"events used partitions {sorted(partitions)}"
    out_of_order = {c: ns for c, ns in received.items() if ns != list(range(1, NOTES + 1))}
    assert not out_of_order, f"{len(out_of_order)} complaints out of order, e.g. {list(out_of_order.items())[:3]}"
    assert len(received) == COMPLAINTS


async def _count(received, expected: int) -> bool:
    return sum(map(len, received.values())) >= expected
