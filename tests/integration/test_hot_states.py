"""Hot states (kernel/states.py) on the real store: a command decides on the state its process
holds without reading the stream, and two processes writing one stream still keep every command,
in order, because the append's version check catches a held state that the other moved on."""

from __future__ import annotations

import asyncio

from services.kernel.commands import current, execute
from services.kernel.domain import Aggregate
from services.kernel.eventstore import Cause, EventStore
from tests.integration.story_events import NOTES, AddNote, NoteAdded, Notes


def in_sequence(state: Notes, command: AddNote, now) -> list[NoteAdded]:
    """Note n may follow only note n-1; a note already there needs nothing."""
    if command.n in state.numbers:
        return []
    if command.n > 1 and command.n - 1 not in state.numbers:
        raise ValueError(f"note {command.n - 1} is missing")
    return [NoteAdded(complaint_id="c-1", n=command.n)]


SEQUENCE = Aggregate(Notes(), NOTES.evolve, in_sequence)


def counting_reads(store: EventStore) -> list[int]:
    reads, load = [], store.load

    async def counting(stream_id, after_version=0):
        reads.append(after_version)
        return await load(stream_id, after_version)

    store.load = counting
    return reads


async def add(store: EventStore, aggregate: Aggregate, n: int):
    return await execute(store, aggregate, "notes", AddNote(n=n), Cause.of_request(f"add-{n}", "add"))


async def test_a_process_appends_to_a_stream_it_holds_without_reading_it(db, test_registry):
    store = EventStore(db, "/services/test", test_registry)
    await add(store, NOTES, 1)
    reads = counting_reads(store)

    for n in range(2, 6):
        await add(store, NOTES, n)

    assert reads == [], "every command after the first decided on the held state"
    assert await current(store, NOTES, "notes") == (Notes(numbers=(1, 2, 3, 4, 5)), 5)


async def test_two_processes_on_one_stream_keep_every_command_in_order(db, test_registry):
    first, second = (EventStore(db, "/services/test", test_registry) for _ in range(2))
    reads = counting_reads(first)
    for n in range(1, 9):
        await add(first if n % 2 else second, NOTES, n)  # each one's held state is always one behind

    assert reads == [0, 1, 3, 5], "after a conflict, only the commits after the held version are read"
    fresh = EventStore(db, "/services/test", test_registry)
    assert await current(fresh, NOTES, "notes") == (Notes(numbers=tuple(range(1, 9))), 8)


async def test_a_refusal_decided_on_a_held_state_is_decided_again_on_the_stream(db, test_registry):
    first, second = (EventStore(db, "/services/test", test_registry) for _ in range(2))
    await add(first, SEQUENCE, 1)
    await add(second, SEQUENCE, 2)  # the first process still holds [1]

    outcome = await add(first, SEQUENCE, 3)  # [1] would refuse 3; the stream holds 2 already

    assert (outcome.state.numbers, outcome.commit.version) == ((1, 2, 3), 3)


async def test_nothing_to_do_on_a_held_state_is_checked_on_the_stream(db, test_registry):
    first, second = (EventStore(db, "/services/test", test_registry) for _ in range(2))
    await add(first, SEQUENCE, 1)
    await add(second, SEQUENCE, 2)

    outcome = await add(first, SEQUENCE, 1)  # nothing to do: the state returned is the stream's, not the held one

    assert outcome.commit is None and outcome.state.numbers == (1, 2)


async def test_processes_racing_on_one_stream_meet_conflicts_retry_and_append_each_command_once(db, test_registry):
    from services.kernel.eventstore import ConcurrencyConflict

    processes = [EventStore(db, "/services/test", test_registry) for _ in range(3)]
    conflicts = []
    for store in processes:
        append = store.append

        async def counting(*args, _append=append, **kwargs):
            try:
                return await _append(*args, **kwargs)
            except ConcurrencyConflict as conflict:
                conflicts.append(conflict)
                raise

        store.append = counting

    await asyncio.gather(*(add(processes[n % 3], NOTES, n) for n in range(1, 13)))

    fresh = EventStore(db, "/services/test", test_registry)
    state, version = await current(fresh, NOTES, "notes")
    assert version == 12 and sorted(state.numbers) == list(range(1, 13))
    assert conflicts, "the processes met, as they do on a database, and retried on fresh state"


async def test_a_stream_named_new_is_decided_on_without_a_read_and_an_old_one_read_after_its_conflict(
    db, test_registry
):
    """``new_stream``: a callback's, a complaint's stream is new when its first command comes, so
    the lookup that would find nothing is skipped; a stream that exists all the same (a
    redelivery) shows as a conflict, or as this very cause's commit, and nothing is lost."""
    writer, fresh = (EventStore(db, "/services/test", test_registry) for _ in range(2))
    reads = counting_reads(fresh)

    async def add_new(store: EventStore, stream: str, n: int, cause: str):
        return await execute(store, SEQUENCE, stream, AddNote(n=n), Cause.of_request(cause, "add"), new_stream=True)

    await add_new(fresh, "notes-new", 1, "new-1")
    assert reads == [], "a new stream: decided on its initial state, no lookup"

    await add(writer, SEQUENCE, 1)  # "notes" exists, written by another process
    outcome = await add_new(fresh, "notes", 2, "again-2")  # decided on the initial state: refused...
    assert reads == [0], "...so decided again on a read"
    assert outcome.state == Notes(numbers=(1, 2))

    await execute(writer, SEQUENCE, "others", AddNote(n=1), Cause.of_request("theirs-1", "add"))
    conflict = await add_new(fresh, "others", 1, "mine-1")  # its version 1 is taken: a conflict, then a read
    assert conflict.commit is None and conflict.state == Notes(numbers=(1,)), "note 1 was there: nothing to do"
    assert reads == [0, 0]

    repeat = await add_new(EventStore(db, "/services/test", test_registry), "notes-new", 1, "new-1")
    assert repeat.commit is not None and repeat.commit.version == 1, "the same cause: its first commit"
    assert await current(fresh, SEQUENCE, "notes-new") == (Notes(numbers=(1,)), 1)
