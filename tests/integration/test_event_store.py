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
