"""The event log on the real document store: concurrency, idempotency, replay order."""

from __future__ import annotations

import asyncio

import pytest

from services.kernel.eventstore import Cause, ConcurrencyConflict, EventStore, retry_on_conflict
from tests.integration.story_events import NoteAdded


@pytest.fixture
async def store(db, test_registry):
    store = EventStore(db, "/services/test", test_registry)
    await store.setup()
    return store


def note(n: int, complaint: str = "c-1") -> NoteAdded:
    return NoteAdded(complaint_id=complaint, n=n)


async def test_two_writers_at_the_same_version_one_wins_and_the_other_gets_a_conflict(store):
    results = await asyncio.gather(
        store.append("c-1", 0, [note(1)], Cause.of_request("writer-a", "test")),
        store.append("c-1", 0, [note(2)], Cause.of_request("writer-b", "test")),
        return_exceptions=True)
    assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 1, results
    loser = "writer-a" if isinstance(results[0], ConcurrencyConflict) else "writer-b"

    async def retry():
        _, version = await store.load("c-1")
        return await store.append("c-1", version, [note(3)], Cause.of_request(loser, "test"))

    await retry_on_conflict(retry)
    commits = await store.read_stream("c-1")
    assert [c.version for c in commits] == [1, 2]
    assert commits[1].metadata["cause"] == loser


async def test_a_conflict_is_detected_whatever_number_of_events_each_writer_appends(store):
    await store.append("c-1", 0, [note(1), note(2), note(3)], Cause.of_request("three", "test"))
    with pytest.raises(ConcurrencyConflict):
        await store.append("c-1", 0, [note(4)], Cause.of_request("one", "test"))


async def test_appending_the_same_cause_twice_appends_nothing_the_second_time(store):
    first = await store.append("c-1", 0, [note(1)], Cause.of_request("req-42", "file"))
    again = await store.append("c-1", 1, [note(1)], Cause.of_request("req-42", "file"))
    assert again.id == first.id and again.version == 1
    assert len(await store.read_stream("c-1")) == 1
    assert first.events[0].id == again.events[0].id  # event ids are derived from the cause


async def test_replay_reads_every_commit_in_the_order_it_was_appended(store):
    for i in range(1, 8):
        await store.append(f"c-{i % 3}", (i - 1) // 3, [note(i, f"c-{i % 3}")],
                           Cause.of_request(f"r{i}", "test"))
    replayed = [c async for c in store.read_all(batch_size=2)]
    assert [c.events[0].data["n"] for c in replayed] == list(range(1, 8))
    assert [c.position for c in replayed] == sorted(c.position for c in replayed)


async def test_loading_a_stream_decodes_its_events_and_returns_its_version(store):
    await store.append("c-9", 0, [note(1, "c-9"), note(2, "c-9")], Cause.of_request("a", "t"))
    await store.append("c-9", 1, [note(3, "c-9")], Cause.of_request("b", "t"))
    events, version = await store.load("c-9")
    assert [e.n for e in events] == [1, 2, 3] and version == 2


async def test_a_commit_with_an_old_event_time_is_not_taken_for_an_orphan_while_it_is_being_written(
        store, settings, topic, monkeypatch):
    """The follower can read a pending entry in the moment before its commit is written; with an
    injected clock in the past (notify's tests) the entry looked months old, was deleted as an
    orphan, and the commit was never projected: an email never sent, once in a few suite runs."""
    from datetime import UTC, datetime

    from services.kernel.follower import LogFollower
    from services.kernel.kafka import ensure_topics, make_broker
    from services.kernel.outbox import Lease, OutboxRelay
    from services.kernel.projections import Projector

    class Applied:
        name, seen = "applied", []

        async def setup(self) -> None: ...

        async def reset(self) -> None: ...

        async def apply(self, envelope, event) -> None:
            self.seen.append(envelope.id)

    await asyncio.to_thread(ensure_topics, settings, [topic])
    broker = make_broker(settings)
    await broker.connect()
    applied = Applied()
    follower = LogFollower(store, OutboxRelay(broker, topic, lambda t: True), Projector(store, [applied]),
                           Lease(store.db, "log-follower", 5))
    write_commit = store.commits.insert_one

    async def the_follower_reads_first(doc, *args, **kwargs):
        await follower.follow_once()  # the pending entry is there, its commit not yet
        return await write_commit(doc, *args, **kwargs)
    monkeypatch.setattr(store.commits, "insert_one", the_follower_reads_first)
    try:
        commit = await store.append("complaint-c-1", 0, [note(1)], Cause.of_request("r-1", "old_time"),
                                    now=datetime(2026, 3, 14, 9, 0, tzinfo=UTC))
        await follower.follow_once()
    finally:
        await broker.stop()

    assert applied.seen == [commit.events[0].id]
    assert await store.pending.count_documents({}) == 0
