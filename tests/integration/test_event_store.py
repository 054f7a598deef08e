"""The event log on the real document store, beyond the contract every store keeps (tests/contract):
replay of the whole log in order, and the pending list the log follower reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.kernel.eventstore import Cause, EventStore, commit_id_of
from services.kernel.projections import DocumentProjection
from tests.integration.story_events import NoteAdded, NoteCounted


@pytest.fixture
async def store(db, test_registry):
    store = EventStore(db, "/services/test", test_registry)
    await store.setup()
    return store


class NoteCounts(DocumentProjection):
    """A read model of one document per complaint: how many notes it has."""

    name = "note_counts"

    async def apply(self, envelope, event) -> None:
        view = await self.view(event.complaint_id) or {"_id": event.complaint_id, "notes": 0}
        view["notes"] += 1
        await self.save(event.complaint_id, view)


def note(n: int, complaint: str = "c-1") -> NoteAdded:
    return NoteAdded(complaint_id=complaint, n=n)


async def test_replay_reads_every_commit_in_the_order_it_was_appended(store):
    for i in range(1, 8):
        await store.append(f"c-{i % 3}", (i - 1) // 3, [note(i, f"c-{i % 3}")], Cause.of_request(f"r{i}", "test"))
    replayed = [c async for c in store.read_all(batch_size=2)]
    assert [c.events[0].data["n"] for c in replayed] == list(range(1, 8))
    assert [c.position for c in replayed] == sorted(c.position for c in replayed)


async def test_a_commit_with_an_old_event_time_is_not_taken_for_an_orphan_while_it_is_being_written(
    store, settings, topic, monkeypatch
):
    """The follower can read a pending entry in the moment before its commit is written; with an
    injected clock in the past (notify's tests) the entry looked months old, was deleted as an
    orphan, and the commit was never projected: an email never sent, once in a few suite runs."""
    from datetime import UTC, datetime

    from services.kernel.follower import LogFollower
    from services.kernel.kafka import ensure_topics, make_broker
    from services.kernel.lease import Lease
    from services.kernel.outbox import OutboxRelay
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
    follower = LogFollower(
        store,
        OutboxRelay(broker, topic, lambda t: True),
        Projector(store, [applied]),
        Lease(store.db, "log-follower", 5),
    )
    write_commit = store.commits.insert_one

    async def the_follower_reads_first(doc, *args, **kwargs):
        await follower.follow_once()  # the pending entry is there, its commit not yet
        return await write_commit(doc, *args, **kwargs)

    monkeypatch.setattr(store.commits, "insert_one", the_follower_reads_first)
    try:
        commit = await store.append(
            "complaint-c-1",
            0,
            [note(1)],
            Cause.of_request("r-1", "old_time"),
            now=datetime(2026, 3, 14, 9, 0, tzinfo=UTC),
        )
        await follower.follow_once()
    finally:
        await broker.stop()

    assert applied.seen == [commit.events[0].id]
    assert await store.pending.count_documents({}) == 0


async def test_the_follower_leaves_an_entry_this_process_is_still_writing_to_the_round_its_write_wakes(
    store, settings, monkeypatch
):
    """Listed before its commit is written (so that no commit goes unpublished), an entry taken up
    in between was looked up in the store for nothing: about one lookup a complaint in a burst."""
    from services.kernel.follower import LogFollower
    from services.kernel.kafka import make_broker
    from services.kernel.lease import Lease
    from services.kernel.outbox import OutboxRelay
    from services.kernel.projections import Projector

    counts = NoteCounts(store.db)
    follower = LogFollower(
        store,
        OutboxRelay(make_broker(settings), "unused", lambda t: False),  # publishes nothing
        Projector(store, [counts]),
        Lease(store.db, "log-follower", 5),
    )
    write_commit, looked_up, find_one = store.inserts["commits"].insert_one, [], store.commits.find_one
    rounds_in_between: list[int] = []

    async def the_follower_comes_first(doc, *args, **kwargs):
        rounds_in_between.append(await follower.follow_once())  # its entry is listed, the commit not yet
        return await write_commit(doc, *args, **kwargs)

    async def counting(filter, *args, **kwargs):
        looked_up.append(filter)
        return await find_one(filter, *args, **kwargs)

    monkeypatch.setattr(store.inserts["commits"], "insert_one", the_follower_comes_first)
    monkeypatch.setattr(store.commits, "find_one", counting)
    await store.append("complaint-c-1", 0, [note(1)], Cause.of_request("r-1", "test"))

    assert rounds_in_between == [0] and looked_up == [], "left alone, not looked up"
    assert await follower.follow_once() == 1, "carried out by the next round"
    assert (await store.db["note_counts"].find_one({"_id": "c-1"}))["notes"] == 1
    assert store.in_flight == set()


async def test_a_read_model_is_read_back_only_when_the_follower_takes_its_lease_anew(db, test_registry, settings):
    """The follower, the only writer of read models, holds what it wrote instead of reading it
    back before the next change; after another replica held the lease, it reads again."""
    from services.kernel.follower import LogFollower
    from services.kernel.kafka import make_broker
    from services.kernel.lease import Lease
    from services.kernel.outbox import OutboxRelay
    from services.kernel.projections import Projector

    def replica() -> tuple[EventStore, LogFollower, list[str]]:
        store, counts = EventStore(db, "/services/test", test_registry), NoteCounts(db)
        reads, find_one = [], counts.views.find_one

        async def counting(filter, *args, **kwargs):
            reads.append(filter["_id"])
            return await find_one(filter, *args, **kwargs)

        counts.views.find_one = counting
        relay = OutboxRelay(make_broker(settings), "unused", lambda t: False)  # publishes nothing
        return store, LogFollower(store, relay, Projector(store, [counts]), Lease(db, "log-follower", 30)), reads

    (first, first_follower, first_reads), (second, second_follower, _) = replica(), replica()
    for n in range(1, 4):
        await first.append("complaint-c-1", n - 1, [note(n)], Cause.of_request(f"r{n}", "test"))
    await first_follower.drain()  # carries the three out, then frees the lease
    for n in range(4, 6):
        await second.append("complaint-c-1", n - 1, [note(n)], Cause.of_request(f"r{n}", "test"))
    await second_follower.drain()
    await first.append("complaint-c-1", 5, [note(6)], Cause.of_request("r6", "test"))
    await first_follower.drain()

    assert first_reads == ["c-1", "c-1"], "read once per lease taken, not once per note"
    assert (await db["note_counts"].find_one({"_id": "c-1"}))["notes"] == 6


async def test_a_round_that_outlives_its_lease_writes_nothing_and_the_holder_carries_it_out_once(
    db, test_registry, settings
):
    """A follower whose lease lapsed mid-round (its process stalled, its keeper could not renew)
    may have been replaced: it writes no read model and deletes no entry; the holder does both."""
    from services.kernel.follower import LogFollower
    from services.kernel.kafka import make_broker
    from services.kernel.lease import Lease
    from services.kernel.outbox import OutboxRelay
    from services.kernel.projections import Projector

    class SlowCounts(NoteCounts):
        async def apply(self, envelope, event) -> None:
            await asyncio.sleep(0.6)  # longer than the lease, and no keeper renews it
            await super().apply(envelope, event)

    store = EventStore(db, "/services/test", test_registry)
    relay = OutboxRelay(make_broker(settings), "unused", lambda t: False)  # publishes nothing
    stalled = LogFollower(store, relay, Projector(store, [SlowCounts(db)]), Lease(db, "log-follower", 0.4))
    holder = LogFollower(store, relay, Projector(store, [NoteCounts(db)]), Lease(db, "log-follower", 30))
    await store.append("complaint-c-1", 0, [note(1)], Cause.of_request("r-1", "test"))
    store.written.clear()  # as another replica sees it: read from the store

    assert await stalled.follow_once() == 0, "the lease lapsed during the round: nothing carried out"
    assert await db["note_counts"].find_one({"_id": "c-1"}) is None
    assert await store.pending.count_documents({}) == 1

    assert await holder.follow_once() == 1
    assert not await stalled.lease.acquire(), "the lapsed one waits its turn"
    assert await stalled.follow_once() == 0
    assert (await db["note_counts"].find_one({"_id": "c-1"}))["notes"] == 1
    assert await store.pending.count_documents({}) == 0


async def test_a_round_that_changes_one_read_model_document_many_times_writes_it_once(db, test_registry, settings):
    from services.kernel.follower import LogFollower
    from services.kernel.kafka import make_broker
    from services.kernel.lease import Lease
    from services.kernel.outbox import OutboxRelay
    from services.kernel.projections import Projector

    store, counts = EventStore(db, "/services/test", test_registry), NoteCounts(db)
    writes, bulk_write = [], counts.views.bulk_write

    async def counting(requests, *args, **kwargs):
        writes.append(len(requests))
        return await bulk_write(requests, *args, **kwargs)

    counts.views.bulk_write = counting
    follower = LogFollower(
        store,
        OutboxRelay(make_broker(settings), "unused", lambda t: False),
        Projector(store, [counts]),
        Lease(db, "log-follower", 30),
    )
    for n in range(1, 6):
        await store.append("complaint-c-1", n - 1, [note(n)], Cause.of_request(f"r{n}", "test"))
        await store.append(f"complaint-c-{n + 1}", 0, [note(1, f"c-{n + 1}")], Cause.of_request(f"o{n}", "test"))

    assert await follower.follow_once() == 10
    assert writes == [6], "one bulk write of the six documents the round changed"
    assert (await db["note_counts"].find_one({"_id": "c-1"}))["notes"] == 5
    assert await store.pending.count_documents({}) == 0


async def test_what_is_neither_published_nor_projected_is_nobodys_pending_work(db, test_registry):
    """A commit of private events that no read model acts on, or a consumed event none acts on,
    lists no pending entry (its insert, its delete and a follower round saved); the others do."""
    from datetime import UTC, datetime

    from services.kernel.consumer import Inbox
    from services.kernel.projections import Projector

    class NoteAddedCounts(NoteCounts):
        events = (NoteAdded,)

    class Received:  # where a consumed message came from, as the inbox records it
        def topic(self) -> str:
            return "complaints.test.v1"

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return 7

    store = EventStore(db, "/services/test", test_registry)
    Projector(store, [NoteAddedCounts(db)])
    inbox, cause, now = Inbox(db, store), Cause.of_request("r1", "test"), datetime.now(UTC)

    private = await store.append("tally-c-1", 0, [NoteCounted(complaint_id="c-1", n=1)], cause)
    projected = await store.append("tally-c-2", 0, [note(1, "c-2")], cause)
    await inbox.record(
        store.envelope(NoteCounted(complaint_id="c-3", n=1), "ev-counted", cause, now), Received(), False
    )
    await inbox.record(store.envelope(note(1, "c-4"), "ev-added", cause, now), Received(), False)

    pending = {entry["_id"] for entry in await store.pending.find({}).to_list()}
    assert pending == {projected.id, "inbox:ev-added"}, private.id
    assert await db["inbox"].count_documents({}) == 2, "both consumed events are in the inbox all the same"

    class NoteCountedCounts(NoteCounts):
        events = (NoteCounted,)

    Projector(store, [NoteCountedCounts(db)])  # a read model of the private event: now it is work
    again = await store.append("tally-c-5", 0, [NoteCounted(complaint_id="c-5", n=1)], cause)
    assert again.id in {entry["_id"] for entry in await store.pending.find({}).to_list()}


async def test_a_long_stream_read_again_from_its_start_takes_its_digest_and_only_the_commits_after_it(store, db):
    for n in range(1, 101):
        await store.append("c-long", n - 1, [note(n, "c-long")], Cause.of_request(f"long{n}", "test"))
    first = await store.read_stream("c-long")  # one by one: keeps the digest
    assert (await db["stream_digests"].find_one({"_id": "c-long"}))["upto"] == 100

    lookups = []
    find_one = store.commits.find_one

    async def counted(*args, **kwargs):
        lookups.append(args[0]["_id"])
        return await find_one(*args, **kwargs)

    store.commits.find_one = counted
    await store.append("c-long", 100, [note(101, "c-long")], Cause.of_request("long101", "test"))
    again = await store.read_stream("c-long")
    assert again[:100] == first and again[100].version == 101
    assert lookups == ["c-long@1", "c-long@101", "c-long@102", "c-long@103"], "the first commit, then after the digest"


async def test_a_stream_never_written_is_read_with_one_lookup(store):
    lookups = []

    def counting(collection):
        find_one = collection.find_one

        async def counted(*args, **kwargs):
            lookups.append(f"{collection.name} {args[0]['_id']}")
            return await find_one(*args, **kwargs)

        collection.find_one = counted

    counting(store.commits)
    counting(store.digests)

    assert await store.read_stream("c-new") == []
    assert lookups == ["commits c-new@1"], "no digest asked for: a stream without a first commit has none"


async def test_a_lost_or_stale_digest_costs_only_reads_one_by_one(store, db):
    for n in range(1, 41):
        await store.append("c-long", n - 1, [note(n, "c-long")], Cause.of_request(f"long{n}", "test"))
    await store.read_stream("c-long")
    await db["stream_digests"].drop()
    assert [c.version for c in await store.read_stream("c-long")] == list(range(1, 41))
    await store.read_stream("c-long")
    # a shorter digest written by a reader that raced never replaces a longer one
    await store._keep_digest("c-long", [doc async for doc in store.commits.find({"stream_id": "c-long"})][:20])
    assert (await db["stream_digests"].find_one({"_id": "c-long"}))["upto"] == 40


async def test_a_rebuild_reads_no_read_model_document_back_and_writes_each_once_per_batch(store, db):
    from services.kernel.projections import Projector

    for i in range(1, 31):
        await store.append(
            f"complaint-c-{i % 3}", (i - 1) // 3, [note(i, f"c-{i % 3}")], Cause.of_request(f"r{i}", "test")
        )
    counts = NoteCounts(db)
    await counts.views.insert_one({"_id": "c-0", "notes": 99})  # what the rebuild must drop
    reads, writes = [], []
    find_one, bulk_write = counts.views.find_one, counts.views.bulk_write

    async def counting_reads(filter, *args, **kwargs):
        reads.append(filter["_id"])
        return await find_one(filter, *args, **kwargs)

    async def counting_writes(requests, *args, **kwargs):
        writes.append(len(requests))
        return await bulk_write(requests, *args, **kwargs)

    counts.views.find_one, counts.views.bulk_write = counting_reads, counting_writes

    assert await Projector(store, [counts]).rebuild("note_counts", batch_size=10) == 30
    assert reads == [], "the model was dropped: nothing to read back"
    assert writes == [3, 3, 3], "each batch of 10 entries writes the three documents once"
    assert {d["_id"]: d["notes"] async for d in db["note_counts"].find({})} == {"c-0": 10, "c-1": 10, "c-2": 10}


class NotesInOrder:
    """Records the notes it is handed, in the order the follower applies them."""

    name, events = "notes_in_order", None

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    async def setup(self) -> None: ...

    async def reset(self) -> None: ...

    async def apply(self, envelope, event) -> None:
        self.seen.append((event.complaint_id, event.n))


async def test_the_follower_reads_entries_as_stored_a_batch_at_a_time_and_applies_each_stream_in_order(store, settings):
    """The follower reads the first entries as stored (no sort: FerretDB would read and sort the
    whole list every round) and orders each batch itself. An entry left by an attempt that
    conflicted is listed again at the end when its cause is retried, so a stream's entries are
    stored in version order and read so, however small the batch."""
    from services.kernel.follower import LogFollower
    from services.kernel.kafka import make_broker
    from services.kernel.lease import Lease
    from services.kernel.outbox import OutboxRelay
    from services.kernel.projections import Projector

    notes = NotesInOrder()
    follower = LogFollower(
        store,
        OutboxRelay(make_broker(settings), "unused", lambda t: False),  # publishes nothing
        Projector(store, [notes]),
        Lease(store.db, "log-follower", 5),
        batch_size=1,
    )
    retried = Cause.of_request("r-retried", "test")
    # An attempt of ``retried`` at version 1 lost to another writer and, crashing, left its entry.
    await store.pending.insert_one(
        {"_id": commit_id_of("complaint-c-1", retried), "kind": "commit", "ref": "complaint-c-1@1", "position": 1}
        | {"created_at": datetime.now(UTC), "published": True}
    )
    await store.append("complaint-c-1", 0, [note(1)], Cause.of_request("r-1", "test"))  # the other writer
    await store.append("complaint-c-2", 0, [note(1, "c-2")], Cause.of_request("r-2", "test"))
    await store.append("complaint-c-1", 1, [note(2)], retried)  # retried on the state after version 1
    await store.append("complaint-c-2", 1, [note(2, "c-2")], Cause.of_request("r-3", "test"))
    await store.append("complaint-c-1", 2, [note(3)], Cause.of_request("r-4", "test"))

    while await follower.follow_once():
        pass

    assert [n for c, n in notes.seen if c == "c-1"] == [1, 2, 3]
    assert [n for c, n in notes.seen if c == "c-2"] == [1, 2]
    assert await store.pending.count_documents({}) == 0


async def test_a_repeat_of_a_cause_whose_entry_is_still_pending_is_its_commit_and_lists_nothing_new(store):
    cause = Cause.of_request("r-1", "test")
    first = await store.append("complaint-c-1", 0, [note(1)], cause)
    entry = await store.pending.find_one({"_id": first.id})

    again = await store.append("complaint-c-1", 1, [note(1)], cause)  # a redelivery, on a newer state

    assert again.id == first.id and again.version == 1
    assert await store.pending.find({}).to_list() == [entry], "the entry still points at the commit"


class Jobs(DocumentProjection):
    """A work list that others change too (as notify's outgoing messages): creates and removes only."""

    name = "jobs"


async def test_a_rounds_creates_and_removes_are_one_bulk_and_leave_what_others_changed(db):
    jobs = Jobs(db)
    await jobs.setup()
    await jobs.views.insert_many(
        [
            {"_id": "being-sent", "attempts": 3},  # created in an earlier round; a courier changed it since
            {"_id": "sent", "attempts": 1},
            {"_id": "queued-again", "v": 1},
        ]
    )
    bulks, bulk_write = [], jobs.views.bulk_write

    async def counting(requests, *args, **kwargs):
        bulks.append(len(requests))
        return await bulk_write(requests, *args, **kwargs)

    jobs.views.bulk_write = counting

    jobs.create("new", {"attempts": 0})
    jobs.create("being-sent", {"attempts": 0})  # its entry applied again after a crash
    jobs.create("placed-at-once", {"attempts": 0})
    jobs.remove("placed-at-once")  # requested and done within the round
    jobs.remove("sent")
    jobs.remove("queued-again")
    jobs.create("queued-again", {"v": 2})
    await jobs.flush()

    assert bulks == [5], "one bulk, one write for each of the five keys (created and removed: one delete)"
    left = {doc["_id"]: doc for doc in await db["jobs"].find({}).to_list()}
    assert left == {
        "new": {"_id": "new", "attempts": 0},
        "being-sent": {"_id": "being-sent", "attempts": 3},
        "queued-again": {"_id": "queued-again", "v": 2},
    }
    await jobs.flush()
    assert bulks == [5], "nothing left to write"


class Gathered(DocumentProjection):
    """A document that only gathers values (as intake's customer views)."""

    name = "gathered"


async def test_values_added_to_sets_are_written_in_one_bulk_without_a_read_and_kept_once(db):
    gathered = Gathered(db)
    await gathered.setup()
    await gathered.views.insert_one({"_id": "customer:a", "complaints": ["c-0"], "orders": ["o-0"], "linked": []})
    reads, find_one = [], gathered.views.find_one
    bulks, bulk_write = [], gathered.views.bulk_write

    async def reading(*args, **kwargs):
        reads.append(args)
        return await find_one(*args, **kwargs)

    async def counting(requests, *args, **kwargs):
        bulks.append(len(requests))
        return await bulk_write(requests, *args, **kwargs)

    gathered.views.find_one, gathered.views.bulk_write = reading, counting

    gathered.add_to_sets("customer:a", {"complaints": ["c-1"], "orders": [], "linked": ["phone:1"]})
    gathered.add_to_sets("customer:a", {"complaints": ["c-2", "c-1"], "orders": ["o-0"], "linked": []})
    gathered.add_to_sets("phone:1", {"complaints": ["c-1"], "orders": [], "linked": ["customer:a"]})
    await gathered.flush()
    gathered.add_to_sets("phone:1", {"complaints": ["c-1"], "orders": [], "linked": ["customer:a"]})  # applied again
    await gathered.flush()

    assert reads == [] and bulks == [2, 1], "one write a key a round, and nothing read"
    left = {doc["_id"]: doc for doc in await db["gathered"].find({}).to_list()}
    assert left == {
        "customer:a": {
            "_id": "customer:a",
            "complaints": ["c-0", "c-1", "c-2"],
            "orders": ["o-0"],
            "linked": ["phone:1"],
        },
        "phone:1": {"_id": "phone:1", "complaints": ["c-1"], "orders": [], "linked": ["customer:a"]},
    }


async def test_the_follower_knows_how_long_what_it_carried_out_had_waited_and_zero_once_nothing_waits(store, settings):
    """Intake's "call me" admission counts this wait (kernel/lag.py, ADR 0051)."""
    from services.kernel.follower import LogFollower
    from services.kernel.kafka import make_broker
    from services.kernel.lease import Lease
    from services.kernel.outbox import OutboxRelay
    from services.kernel.projections import Projector

    follower = LogFollower(
        store,
        OutboxRelay(make_broker(settings), "unused", lambda t: False),
        Projector(store, [NoteCounts(store.db)]),
        Lease(store.db, "log-follower", 30),
    )
    await store.append("complaint-c-1", 0, [note(1)], Cause.of_request("r-1", "test"))
    await store.append("complaint-c-1", 1, [note(2)], Cause.of_request("r-2", "test"))
    # as if the first had been appended 5 s ago, behind a backlog
    first = (await store.pending.find({}).to_list())[0]
    await store.pending.update_one(
        {"_id": first["_id"]}, {"$set": {"created_at": first["created_at"] - timedelta(seconds=5)}}
    )
    store.written.clear()

    assert await follower.follow_once() == 2
    assert 5 <= follower.waited_s < 10
    assert await follower.follow_once() == 0
    assert follower.waited_s == 0
