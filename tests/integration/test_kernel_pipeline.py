"""Append → outbox relay → Kafka → consumer → inbox, on the real broker and store."""

from __future__ import annotations

from services.kernel.eventstore import Cause
from services.kernel.runtime import Runtime
from tests.integration.story_events import NoteAdded, NoteCounted
from tests.integration.support import wait_for


async def test_an_appended_event_reaches_a_consumer_which_records_it_once(settings, topic, test_registry, db):
    runtime = Runtime.create(settings, test_registry, topic)
    seen: list[NoteAdded] = []

    async def count(event: NoteAdded, envelope) -> None:
        seen.append(event)
        await runtime.store.append(
            f"count-{event.complaint_id}",
            0,
            [NoteCounted(complaint_id=event.complaint_id, n=event.n)],
            Cause.of_event(envelope, "count"),
        )

    runtime.consumer.subscribe(topic, f"{topic}-group", {NoteAdded: count})
    await runtime.start()
    try:
        await runtime.store.append("c-1", 0, [NoteAdded(complaint_id="c-1", n=1)], Cause.of_request("r1", "test"))
        await wait_for(lambda: runtime.inbox.entries.count_documents({}))
        assert [e.n for e in seen] == [1]
        commits = await runtime.store.read_stream("count-c-1")
        assert len(commits) == 1 and commits[0].events[0].type == "complaints.test.NoteCounted.v1"
        await wait_for(lambda: _none_pending(runtime))  # published and projected: nothing left
    finally:
        await runtime.stop()


async def _none_pending(runtime) -> bool:
    return await runtime.store.pending.count_documents({}) == 0


async def test_a_consumer_asks_its_inbox_only_until_a_partitions_first_message_not_handled_before(
    settings, topic, test_registry, db
):
    """A partition's messages are handled in order: once one is new to the inbox, so are the
    ones after it (tests/integration/test_crashes.py: what a previous owner handled is dropped)."""
    runtime = Runtime.create(settings, test_registry, topic)
    handled: list[int] = []
    looked_up: list[str] = []
    seen = runtime.inbox.seen

    async def counted_seen(event_id: str) -> bool:
        looked_up.append(event_id)
        return await seen(event_id)

    async def count(event: NoteAdded, envelope) -> None:
        handled.append(event.n)

    runtime.inbox.seen = counted_seen
    runtime.consumer.subscribe(topic, f"{topic}-group", {NoteAdded: count})
    await runtime.start()
    try:
        for n in range(1, 6):  # one complaint: one partition
            await runtime.store.append(
                "c-1", n - 1, [NoteAdded(complaint_id="c-1", n=n)], Cause.of_request(f"r{n}", "test")
            )
        await wait_for(lambda: len(handled) == 5)
    finally:
        await runtime.stop()

    assert handled == [1, 2, 3, 4, 5]
    assert len(looked_up) == 1, "the first message only"
