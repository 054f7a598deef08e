"""The snapshot shelf's contract (kernel/commands.py), the same tests in memory and on MongoDB."""

from __future__ import annotations

from services.kernel.commands import Snapshots, execute
from services.kernel.eventstore import Cause
from tests.integration.story_events import NOTES, AddNote


async def test_a_stream_with_no_snapshot_has_none_on_the_shelf(shelf):
    assert await shelf.get("roster") is None


async def test_the_latest_snapshot_put_is_the_one_got(shelf):
    await shelf.put("roster", 100, {"numbers": [1, 2]})
    await shelf.put("roster", 200, {"numbers": [1, 2, 3]})
    got = await shelf.get("roster")
    assert (got["version"], got["state"]) == (200, {"numbers": [1, 2, 3]})


async def test_changing_a_snapshot_got_from_the_shelf_changes_nothing_on_it(shelf):
    await shelf.put("roster", 100, {"numbers": [1, 2]})
    (await shelf.get("roster"))["state"]["numbers"].append(3)
    assert (await shelf.get("roster"))["state"] == {"numbers": [1, 2]}


async def test_a_restarted_process_starts_from_the_shelf_and_reads_only_the_commits_after_it(store, shelf):
    snapshots = Snapshots(shelf, every=10)
    for n in range(1, 26):
        await execute(store, NOTES, "notes", AddNote(n=n), Cause.of_request(f"add-{n}", "add"), snapshots=snapshots)
    assert (await shelf.get("notes"))["version"] == 20

    store.states.clear()  # the process restarts: it holds no state
    reads, load = [], store.load

    async def counting(stream_id, after_version=0):
        reads.append(after_version)
        return await load(stream_id, after_version)

    store.load = counting
    state, version = await Snapshots(shelf, every=10).load(store, NOTES, "notes")
    assert reads == [20] and (state.numbers, version) == (tuple(range(1, 26)), 25)
