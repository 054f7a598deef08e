"""Snapshots of a long stream (services/kernel/commands.py) on the real store: a restarted process
starts from the stored snapshot, reads only the commits after it, and gets the state a full replay
gives; concurrent writers through snapshots still keep every command."""

from __future__ import annotations

import asyncio

from services.kernel.commands import Snapshots, execute
from services.kernel.eventstore import Cause, EventStore
from tests.integration.story_events import NOTES, AddNote, Notes


async def add(store: EventStore, n: int, snapshots: Snapshots | None) -> None:
    await execute(store, NOTES, "notes", AddNote(n=n), Cause.of_request(f"add-{n}", "add"), snapshots=snapshots)


async def test_a_restarted_process_starts_from_the_stored_snapshot_and_reads_only_what_came_after(db, test_registry):
    store = EventStore(db, "/services/test", test_registry)
    snapshots = Snapshots(db, every=10)
    for n in range(1, 26):
        await add(store, n, snapshots)

    [stored] = await db["snapshots"].find().to_list()
    assert stored["version"] == 20 and stored["state"]["numbers"] == list(range(1, 21))

    restarted = Snapshots(db, every=10)
    store.states.clear()  # the process restarts: it holds no state
    reads = []
    original = store.load

    async def counting(stream_id, after_version=0):
        reads.append(after_version)
        return await original(stream_id, after_version)

    store.load = counting
    state, version = await restarted.load(store, NOTES, "notes")

    assert reads == [20], "only the commits after the snapshot are read"
    assert (state, version) == (
        NOTES.fold((await EventStore(db, "/services/test", test_registry).load("notes"))[0]),
        25,
    )


async def test_concurrent_writers_through_snapshots_lose_nothing_and_a_stale_snapshot_is_harmless(db, test_registry):
    store = EventStore(db, "/services/test", test_registry)

    async def writer(first: int) -> None:  # three processes, each with its own store and snapshots
        own, snapshots = EventStore(db, "/services/test", test_registry), Snapshots(db, every=7)
        for n in range(first, 61, 3):
            await add(own, n, snapshots)

    await asyncio.gather(writer(1), writer(2), writer(3))
    stale = await notes_at(store, 3)  # an old snapshot, as a slow writer may leave behind
    await db["snapshots"].replace_one(
        {"_id": "notes"}, {"_id": "notes", "version": 3, "state": stale.model_dump(mode="json")}, upsert=True
    )

    store.states.clear()
    state, version = await Snapshots(db).load(store, NOTES, "notes")
    assert version == 60 and sorted(state.numbers) == list(range(1, 61))
    store.states.clear()
    await db["snapshots"].replace_one({"_id": "notes"}, {"_id": "notes", "version": 5, "state": {"numbers": "garbled"}})
    state, version = await Snapshots(db).load(store, NOTES, "notes")
    assert version == 60 and sorted(state.numbers) == list(range(1, 61)), "a snapshot that does not fit is ignored"


async def notes_at(store: EventStore, version: int) -> Notes:
    commits = await store.read_stream("notes")
    return NOTES.fold([store.registry.decode(e.type, e.data) for c in commits[:version] for e in c.events])
