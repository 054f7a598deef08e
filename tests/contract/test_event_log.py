"""The event log's contract (kernel/eventlog.py), the same tests for the store in memory and on MongoDB."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from services.kernel.commands import execute
from services.kernel.eventstore import Cause, ConcurrencyConflict, derived_id, retry_on_conflict
from tests.integration.story_events import NOTES, AddNote, NoteAdded

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


def note(n: int, complaint: str = "c-1") -> NoteAdded:
    return NoteAdded(complaint_id=complaint, n=n)


async def test_loading_a_stream_decodes_its_events_and_returns_its_version(store):
    await store.append("c-9", 0, [note(1, "c-9"), note(2, "c-9")], Cause.of_request("a", "t"))
    await store.append("c-9", 1, [note(3, "c-9")], Cause.of_request("b", "t"))
    events, version = await store.load("c-9")
    assert [e.n for e in events] == [1, 2, 3] and version == 2


async def test_a_stream_never_appended_to_loads_empty_at_version_zero(store):
    assert await store.load("c-none") == ([], 0)
    assert await store.read_stream("c-none") == []


async def test_each_commit_takes_the_next_version_whatever_number_of_events_it_holds(store):
    first = await store.append("c-1", 0, [note(1), note(2), note(3)], Cause.of_request("a", "t"))
    second = await store.append("c-1", 1, [note(4)], Cause.of_request("b", "t"))
    assert (first.version, second.version) == (1, 2)
    assert [c.version for c in await store.read_stream("c-1")] == [1, 2]
    assert [len(c.events) for c in await store.read_stream("c-1")] == [3, 1]


async def test_appending_no_events_appends_nothing_and_returns_none(store):
    assert await store.append("c-1", 0, [], Cause.of_request("a", "t")) is None
    assert await store.load("c-1") == ([], 0)


async def test_reading_after_a_version_gives_only_the_later_commits(store):
    for n in range(1, 5):
        await store.append("c-1", n - 1, [note(n)], Cause.of_request(f"r{n}", "t"))
    assert [c.version for c in await store.read_stream("c-1", after_version=2)] == [3, 4]
    events, version = await store.load("c-1", after_version=2)
    assert [e.n for e in events] == [3, 4] and version == 4
    assert await store.load("c-1", after_version=4) == ([], 4)


async def test_two_writers_at_the_same_version_one_wins_and_the_other_gets_a_conflict(store):
    results = await asyncio.gather(
        store.append("c-1", 0, [note(1)], Cause.of_request("writer-a", "test")),
        store.append("c-1", 0, [note(2)], Cause.of_request("writer-b", "test")),
        return_exceptions=True,
    )
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


async def test_a_conflict_names_the_stream_and_the_version_the_writer_expected(store):
    await store.append("c-1", 0, [note(1)], Cause.of_request("first", "test"))
    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append("c-1", 0, [note(2)], Cause.of_request("second", "test"))
    assert (raised.value.stream_id, raised.value.expected_version) == ("c-1", 0)


async def test_appending_the_same_cause_twice_appends_nothing_the_second_time(store):
    first = await store.append("c-1", 0, [note(1)], Cause.of_request("req-42", "file"))
    again = await store.append("c-1", 1, [note(1)], Cause.of_request("req-42", "file"))
    assert again.id == first.id and again.version == 1
    assert len(await store.read_stream("c-1")) == 1
    assert first.events[0].id == again.events[0].id  # event ids are derived from the cause


async def test_a_cause_repeated_at_its_own_version_returns_its_commit_and_appends_nothing(store):
    first = await store.append("c-1", 0, [note(1)], Cause.of_request("req-42", "file"))
    again = await store.append("c-1", 0, [note(1)], Cause.of_request("req-42", "file"))
    assert again.id == first.id and [c.version for c in await store.read_stream("c-1")] == [1]


async def test_a_cause_repeated_behind_another_writer_conflicts_then_finds_its_commit_on_fresh_state(store):
    mine = await store.append("c-1", 0, [note(1)], Cause.of_request("mine", "file"))
    await store.append("c-1", 1, [note(2)], Cause.of_request("theirs", "file"))
    with pytest.raises(ConcurrencyConflict):  # its version is taken by another cause
        await store.append("c-1", 1, [note(1)], Cause.of_request("mine", "file"))
    again = await store.append("c-1", 2, [note(1)], Cause.of_request("mine", "file"))
    assert (again.id, again.version) == (mine.id, 1)
    assert [c.version for c in await store.read_stream("c-1")] == [1, 2]


async def test_the_same_cause_on_two_streams_makes_two_commits(store):
    one = await store.append("c-1", 0, [note(1, "c-1")], Cause.of_request("req", "file"))
    two = await store.append("c-2", 0, [note(1, "c-2")], Cause.of_request("req", "file"))
    assert one.id != two.id and one.events[0].id != two.events[0].id


async def test_commit_and_event_ids_follow_from_the_cause_alone_so_they_never_change(store):
    """Pinned values: a repeat after a deployment must still find the commit it made before."""
    commit = await store.append("c-1", 0, [note(1), note(2)], Cause.of_request("req-42", "file"), now=T0)
    assert commit.id == derived_id("commit", "file", "req-42", "c-1") == "5c7f5b53-afbe-524b-be8e-93e30c840356"
    assert [e.id for e in commit.events] == [derived_id(commit.id, "0"), derived_id(commit.id, "1")]
    assert [e.id for e in commit.events] == [
        "f9e6fac4-f576-52c3-b352-4b18f4deca90",
        "9860c24e-e0ea-54aa-a8cc-f15864060130",
    ]


async def test_an_appended_event_travels_in_an_envelope_that_names_its_cause(store):
    cause = Cause("event-7", "count", "conversation-3", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    commit = await store.append("c-1", 0, [note(1)], cause, now=T0)
    [envelope] = (await store.read_stream("c-1"))[0].events
    assert envelope == commit.events[0]
    assert (envelope.type, envelope.source, envelope.subject, envelope.time) == (
        NoteAdded.ce_type(),
        "/services/test",
        "c-1",
        T0,
    )
    assert (envelope.correlationid, envelope.causationid) == ("conversation-3", "event-7")
    # the cause's trace goes on: its own span, or, where tracing is installed, the append's span in it
    assert envelope.traceparent.split("-")[1] == cause.traceparent.split("-")[1]
    assert envelope.data == {"complaint_id": "c-1", "n": 1, "text": ""}
    assert commit.metadata == {"handler": "count", "cause": "event-7", "correlation_id": "conversation-3"}
    rebuilt = store.envelope(note(1), envelope.id, cause, T0)
    assert rebuilt.model_copy(update={"traceparent": envelope.traceparent}) == envelope


async def test_listeners_are_woken_after_each_append_and_not_by_a_repeat_a_conflict_or_nothing(store):
    woken: list[str] = []
    store.on_append(lambda: woken.append("first"))
    store.on_append(lambda: woken.append("second"))
    await store.append("c-1", 0, [note(1)], Cause.of_request("a", "t"))
    assert woken == ["first", "second"]
    await store.append("c-1", 0, [note(1)], Cause.of_request("a", "t"))
    with pytest.raises(ConcurrencyConflict):
        await store.append("c-1", 0, [note(2)], Cause.of_request("b", "t"))
    await store.append("c-1", 1, [], Cause.of_request("c", "t"))
    assert woken == ["first", "second"]


async def test_positions_grow_in_the_order_commits_were_appended_across_streams(store):
    commits = [
        await store.append(f"c-{i % 3}", (i - 1) // 3, [note(i, f"c-{i % 3}")], Cause.of_request(f"r{i}", "t"))
        for i in range(1, 8)
    ]
    positions = [c.position for c in commits]
    assert positions == sorted(positions) and len(set(positions)) == 7
    reread = [c.position for s in ("c-0", "c-1", "c-2") for c in await store.read_stream(s)]
    assert sorted(reread) == positions


async def test_what_a_reader_does_to_a_commit_s_data_never_changes_the_log(store):
    await store.append("c-1", 0, [note(1)], Cause.of_request("a", "t"))
    [commit] = await store.read_stream("c-1")
    commit.events[0].data["n"] = 99
    commit.metadata["cause"] = "forged"
    [again] = await store.read_stream("c-1")
    assert again.events[0].data["n"] == 1 and again.metadata["cause"] == "a"


async def test_commands_racing_on_one_stream_in_one_process_take_turns_and_are_each_appended_once(store):
    conflicts, append = [], store.append

    async def counting(*args, **kwargs):
        try:
            return await append(*args, **kwargs)
        except ConcurrencyConflict as conflict:
            conflicts.append(conflict)
            raise

    store.append = counting
    await asyncio.gather(
        *(execute(store, NOTES, "c-1", AddNote(n=n), Cause.of_request(f"add-{n}", "add")) for n in range(1, 9))
    )
    events, version = await store.load("c-1")
    assert version == 8 and sorted(e.n for e in events) == list(range(1, 9))
    assert conflicts == [], "one process's commands on a stream wait their turn (kernel/states.py)"


async def test_a_long_stream_reads_back_whole_and_in_order_from_any_version_and_as_often_as_asked(store):
    # 300 commits: the first read from the start reads them one by one (and MongoDB's store keeps
    # them as the stream's digest); the next ones must give the very same commits
    for n in range(1, 301):
        await store.append("c-long", n - 1, [note(n, "c-long")], Cause.of_request(f"long{n}", "t"))
    first = await store.read_stream("c-long")
    assert [c.version for c in first] == list(range(1, 301))
    for after in (0, 0, 5, 16, 299, 300):
        assert await store.read_stream("c-long", after_version=after) == first[after:], after
        events, version = await store.load("c-long", after_version=after)
        assert [e.n for e in events] == list(range(after + 1, 301)) and version == 300, after
    for n in range(301, 321):  # it grows: a read from the start takes the rest one by one
        await store.append("c-long", n - 1, [note(n, "c-long")], Cause.of_request(f"long{n}", "t"))
    assert [e.n for e in (await store.load("c-long"))[0]] == list(range(1, 321))
    assert [c.version for c in await store.read_stream("c-long")] == list(range(1, 321))


async def test_a_run_of_commits_takes_the_next_versions_each_with_its_own_cause(store):
    await store.append("c-1", 0, [note(1)], Cause.of_request("first", "t"))
    run = [([note(n)], Cause.of_request(f"run-{n}", "t"), T0) for n in (2, 3, 4)]
    written = await store.append_run("c-1", 1, run)
    assert [(c.version, c.metadata["cause"]) for c in written] == [(2, "run-2"), (3, "run-3"), (4, "run-4")]
    assert [e.n for e in (await store.load("c-1"))[0]] == [1, 2, 3, 4]
    assert [c.id for c in written] == [c.id for c in (await store.read_stream("c-1", 1))]


async def test_a_run_stops_before_a_version_another_writer_took_and_writes_nothing_after_it(store):
    await store.append("c-1", 0, [note(1)], Cause.of_request("first", "t"))
    await store.append("c-1", 1, [note(9)], Cause.of_request("other-writer", "t"))
    run = [([note(n)], Cause.of_request(f"run-{n}", "t"), T0) for n in (2, 3)]
    assert await store.append_run("c-1", 1, run) == []
    assert [e.n for e in (await store.load("c-1"))[0]] == [1, 9], (
        "a commit on top of another's version is never written"
    )
    assert await store.append_run("c-1", 0, [([note(5)], Cause.of_request("late", "t"), T0)]) == []


async def test_a_run_stops_before_a_cause_appended_before_and_keeps_what_came_before_it(store):
    await store.append("c-1", 0, [note(1)], Cause.of_request("repeat", "t"))
    run = [
        ([note(2)], Cause.of_request("new", "t"), T0),
        ([note(3)], Cause.of_request("repeat", "t"), T0),  # a redelivery: appended at version 1 already
        ([note(4)], Cause.of_request("after", "t"), T0),
    ]
    written = await store.append_run("c-1", 1, run)
    assert [c.metadata["cause"] for c in written] == ["new"]
    assert [e.n for e in (await store.load("c-1"))[0]] == [1, 2]
    # What the rest is, ``append`` tells: the repeat returns its first commit.
    assert (await store.append("c-1", 2, [note(3)], Cause.of_request("repeat", "t"))).version == 1


async def test_commands_queued_on_a_stream_go_together_each_in_its_own_commit_in_the_order_they_came(store):
    runs, append_run = [], store.append_run

    async def recording(stream_id, expected_version, run):
        runs.append(len(run))
        return await append_run(stream_id, expected_version, run)

    store.append_run = recording
    outcomes = await asyncio.gather(
        *(execute(store, NOTES, "c-1", AddNote(n=n), Cause.of_request(f"add-{n}", "add")) for n in range(1, 9))
    )
    commits = await store.read_stream("c-1")
    assert [c.metadata["cause"] for c in commits] == [f"add-{n}" for n in range(1, 9)]
    assert [o.commit.version for o in outcomes] == list(range(1, 9))
    assert [o.state.numbers for o in outcomes] == [tuple(range(1, n + 1)) for n in range(1, 9)]
    assert runs == [7], "the first goes alone; the seven that queued behind it go as one run"


async def test_a_refused_command_in_a_run_is_refused_to_its_caller_alone(store):
    def decide(state, command: AddNote, now):
        if command.n == 3:
            raise ValueError("three is refused")
        return [] if command.n == 4 else [note(command.n)]

    notes = dataclasses.replace(NOTES, decide=decide)
    outcomes = await asyncio.gather(
        *(execute(store, notes, "c-1", AddNote(n=n), Cause.of_request(f"add-{n}", "add")) for n in range(1, 6)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], ValueError)
    assert outcomes[3].commit is None and outcomes[3].state.numbers == (1, 2)
    assert [e.n for e in (await store.load("c-1"))[0]] == [1, 2, 5]


async def test_a_run_that_meets_another_writer_s_commit_carries_out_each_command_once_on_fresh_state(store):
    await execute(store, NOTES, "c-1", AddNote(n=1), Cause.of_request("add-1", "add"))  # held at version 1
    await store.append("c-1", 1, [note(9)], Cause.of_request("another-replica", "t"))  # unseen by the held state
    outcomes = await asyncio.gather(
        *(execute(store, NOTES, "c-1", AddNote(n=n), Cause.of_request(f"add-{n}", "add")) for n in range(2, 6))
    )
    assert [e.n for e in (await store.load("c-1"))[0]] == [1, 9, 2, 3, 4, 5]
    assert [o.commit.version for o in outcomes] == [3, 4, 5, 6]
    assert outcomes[-1].state.numbers == (1, 9, 2, 3, 4, 5)
