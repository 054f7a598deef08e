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
