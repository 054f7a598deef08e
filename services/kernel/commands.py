"""Running a command against one stream: load, fold with ``evolve``, ``decide``, append, retry on conflict."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from contracts.envelope import Event
from services.kernel.domain import Aggregate
from services.kernel.eventlog import EventLog
from services.kernel.eventstore import Cause, Commit, retry_on_conflict

S = TypeVar("S", bound=BaseModel)  # snapshots dump and validate states: pydantic models (domain Values)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome(Generic[S]):
    """The stream's state after the command, and the commit it appended (None: nothing to do)."""

    state: S
    commit: Commit | None


class SnapshotShelf(Protocol):
    """Where snapshots outlive the process: the latest one stored of each stream, as JSON-ready data."""

    async def get(self, stream_id: str) -> dict[str, Any] | None:
        """The stream's stored snapshot (``version`` and ``state``), or None."""
        ...

    async def put(self, stream_id: str, version: int, state: dict[str, Any]) -> None:
        """Store the stream's state at ``version`` in place of the one before."""
        ...


class CollectionShelf:
    """Snapshots in a database's ``snapshots`` collection, one document per stream."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.docs = db["snapshots"]

    async def get(self, stream_id: str) -> dict[str, Any] | None:
        return await self.docs.find_one({"_id": stream_id})

    async def put(self, stream_id: str, version: int, state: dict[str, Any]) -> None:
        await self.docs.replace_one(
            {"_id": stream_id}, {"_id": stream_id, "version": version, "state": state}, upsert=True
        )


class Snapshots:
    """Stored snapshots of long streams (the roster), so that a restarted process does not re-read
    one from its start.

    Every ``every`` versions the state is put on a shelf: a database's ``snapshots`` collection or,
    in tests, memory_store's. Commits never change and versions have no gaps, so any snapshot is
    the true state at its version: racing writers, a stale copy or a lost write cost only
    re-reading a few commits. A stored snapshot that no longer fits the state's model (the code
    changed) is ignored and the stream replayed. While the process runs, the state itself is held
    in the store's hot states (kernel/states.py), as every stream's is.
    """

    def __init__(self, shelf: AsyncDatabase[dict[str, Any]] | SnapshotShelf, every: int = 100) -> None:
        self.shelf = CollectionShelf(shelf) if isinstance(shelf, AsyncDatabase) else shelf
        self.every = every

    async def load(self, store: EventLog, aggregate: Aggregate[S], stream_id: str) -> tuple[S, int]:
        """The stream's current state and version (held state or snapshot, then newer commits)."""
        return await current(store, aggregate, stream_id, self)

    async def keep(self, stream_id: str, state: S, version: int, before: int) -> None:
        """Store a snapshot when the stream crossed a multiple of ``every`` since ``before``."""
        if version // self.every > before // self.every:
            await self.shelf.put(stream_id, version, state.model_dump(mode="json"))

    async def stored(self, aggregate: Aggregate[S], stream_id: str) -> tuple[S, int]:
        doc = await self.shelf.get(stream_id)
        try:
            if doc is not None:
                return type(aggregate.initial).model_validate(doc["state"]), doc["version"]
        except ValidationError:
            log.warning("snapshot of %s no longer fits its model; replaying the stream", stream_id)
        return aggregate.initial, 0


async def current(
    store: EventLog, aggregate: Aggregate[S], stream_id: str, snapshots: Snapshots | None = None
) -> tuple[S, int]:
    """The stream's current state and version: the held state (or the stored snapshot) plus the
    commits after it (one read that finds none, when nothing changed)."""
    held = store.states.get(aggregate, stream_id)
    if held is None:
        held = await snapshots.stored(aggregate, stream_id) if snapshots else (aggregate.initial, 0)
    state, version = held
    events, version = await store.load(stream_id, version)
    state = reduce(aggregate.evolve, events, state)
    store.states.put(aggregate, stream_id, state, version)
    return state, version


#: Commands of one run at most (kernel/eventstore.py ``append_run`` writes them in one command).
MAX_RUN = 64


@dataclass
class _Queued:
    """A command waiting for its stream's turn, and where its outcome goes."""

    aggregate: Aggregate[Any]
    snapshots: Snapshots | None
    command: Any
    cause: Cause
    now: datetime
    new_stream: bool
    outcome: asyncio.Future[Any]

    def goes_with(self, first: _Queued) -> bool:
        """Whether it may go in the run ``first`` leads: the same fold of the stream."""
        return self.aggregate is first.aggregate and self.snapshots is first.snapshots


async def execute(
    store: EventLog,
    aggregate: Aggregate[S],
    stream_id: str,
    command: Any,
    cause: Cause,
    now: datetime | None = None,
    snapshots: Snapshots | None = None,
    *,
    new_stream: bool = False,
) -> Outcome[S]:
    """Decide ``command`` on the stream's current state and append the result (retried on conflict).

    The first attempt decides on the state this process holds, without reading the stream (see
    kernel/states.py: the append's version check catches a state that another writer moved on);
    an attempt after a conflict, or with nothing held, reads the commits it lacks. With
    ``snapshots`` a stream nothing holds starts from its last stored snapshot.

    ``new_stream``: the stream is most likely new (named after an id just made: a complaint's,
    a callback's), so with nothing held the first attempt decides on the initial state without a
    read — the lookup that finds nothing. If the stream exists after all (a redelivery), its
    first commit is there: a repeat of this cause is that commit, another is a conflict, and the
    retry reads.

    The commands of a process take turns per stream. Those that queued while another held the
    turn (a hot stream: routing's roster takes two commands a complaint) go together when the
    turn comes: decided one after the other on the state, each on the one before's, and appended
    as a run of commits in one write (``append_run``). Each is still its own commit, with its
    cause's id, so a repeat of a cause is found as before. Without this the stream's turn was
    held for two store round trips per command, and that bounded the whole process's rate.
    """
    mine = _Queued(
        aggregate,
        snapshots,
        command,
        cause,
        now or datetime.now(UTC),
        new_stream,
        asyncio.get_running_loop().create_future(),
    )
    mine.outcome.add_done_callback(_retrieved)
    queued = store.states.queued
    queued.setdefault(stream_id, []).append(mine)
    try:
        async with store.states.turn(stream_id):
            # Ours is still queued (the queue is looked up anew: a run cut short puts its rest
            # back at the head) unless the run of someone before us took it.
            while not mine.outcome.done():
                queue = queued[stream_id]
                head = queue[:MAX_RUN]
                run = head[: next((n for n, q in enumerate(head) if not q.goes_with(head[0])), len(head))]
                del queue[: len(run)]
                await _run(store, run[0].aggregate, stream_id, run, run[0].snapshots)
    except BaseException:
        if not mine.outcome.done() and mine in queued.get(stream_id, ()):
            queued[stream_id].remove(mine)  # cancelled before its turn: nobody runs it
        raise
    finally:
        if not queued.get(stream_id, True):
            del queued[stream_id]  # no list kept for a stream nobody waits on
    outcome: Outcome[S] = mine.outcome.result()
    return outcome


async def _run(
    store: EventLog, aggregate: Aggregate[S], stream_id: str, run: list[_Queued], snapshots: Snapshots | None
) -> None:
    """Carry out the commands of ``run``, in order, and give each its outcome. Any the run did not
    finish (its task cancelled) go back to the head of the queue for the next turn."""
    try:
        if len(run) == 1:
            await _settle(run[0], _one(store, aggregate, stream_id, run[0], snapshots))
        else:
            await _together(store, aggregate, stream_id, run, snapshots)
    except Exception as exc:  # the store failed under all of them
        for queued in run:
            if not queued.outcome.done():
                queued.outcome.set_exception(exc)
    finally:
        if unfinished := [queued for queued in run if not queued.outcome.done()]:
            queue = store.states.queued.setdefault(stream_id, [])
            queue[:0] = unfinished  # a repeat of a cause is found by its commit id: safe to run again


async def _settle(queued: _Queued, work: Awaitable[Any]) -> None:
    """Give ``queued`` the outcome of ``work``: its result, or what it raised (a refusal)."""
    try:
        result = await work
    except Exception as exc:
        if not queued.outcome.done():
            queued.outcome.set_exception(exc)
        return
    if not queued.outcome.done():
        queued.outcome.set_result(result)


async def _one(
    store: EventLog, aggregate: Aggregate[S], stream_id: str, queued: _Queued, snapshots: Snapshots | None
) -> Outcome[S]:
    """One command alone: decide on the held state, else on a read, append; again on conflict."""
    optimistic = True
    command, now = queued.command, queued.now

    async def attempt() -> Outcome[S]:
        nonlocal optimistic
        held = store.states.get(aggregate, stream_id) if optimistic else None
        if held is None and optimistic and queued.new_stream:
            held = (aggregate.initial, 0)
        optimistic = False  # a retry after a conflict reads what it lacks
        if held is not None:
            # A refusal or a "nothing to do" may come from a state another replica moved on:
            # only an append proves the held state current, so those are decided again on a read.
            try:
                decided = aggregate.decide(held[0], command, now)
            except Exception:
                decided = []
            if decided:
                return await appended(*held, decided)
        state, version = await current(store, aggregate, stream_id, snapshots)
        return await appended(state, version, aggregate.decide(state, command, now))

    async def appended(state: S, version: int, decided: list[Event]) -> Outcome[S]:
        commit = await store.append(stream_id, version, decided, queued.cause, now)
        if commit is not None and commit.version != version + 1:
            return Outcome(state, commit)  # appended before: the state decided on already holds it
        after = reduce(aggregate.evolve, decided, state)
        if commit is not None:
            store.states.put(aggregate, stream_id, after, commit.version)
            if snapshots is not None:
                await snapshots.keep(stream_id, after, commit.version, version)
        return Outcome(after, commit)

    outcome: Outcome[S] = await retry_on_conflict(attempt)
    return outcome


async def _together(
    store: EventLog, aggregate: Aggregate[S], stream_id: str, run: list[_Queued], snapshots: Snapshots | None
) -> None:
    """Several commands on one stream: each decided on the state the ones before it leave, their
    commits appended in one run. From the first whose commit was not written (another writer's
    commit took its version, or its cause was appended before), each goes alone (``_one``)."""
    held = store.states.get(aggregate, stream_id)
    fresh = held is None
    state, version = held if held is not None else await current(store, aggregate, stream_id, snapshots)
    while True:
        decisions: list[list[Event] | Exception] = []
        running = state
        for queued in run:
            try:
                decided = aggregate.decide(running, queued.command, queued.now)
            except Exception as exc:
                decisions.append(exc)
                continue
            decisions.append(decided)
            running = reduce(aggregate.evolve, decided, running)
        # As for one command: a refusal or "nothing to do" on a held state is decided on a read.
        if fresh or all(isinstance(d, list) and d for d in decisions):
            break
        state, version = await current(store, aggregate, stream_id, snapshots)
        fresh = True
    appending = [(d, q.cause, q.now) for q, d in zip(run, decisions, strict=True) if isinstance(d, list) and d]
    written = await store.append_run(stream_id, version, appending) if appending else []
    commits = iter(written)
    running, at = state, version
    for n, (queued, decision) in enumerate(zip(run, decisions, strict=True)):
        if isinstance(decision, Exception):
            queued.outcome.set_exception(decision)
            continue
        if not decision:
            queued.outcome.set_result(Outcome(running, None))
            continue
        commit = next(commits, None)
        if commit is None:  # not written: this one and the rest on their own, in order
            for rest in run[n:]:
                await _settle(rest, _one(store, aggregate, stream_id, rest, snapshots))
            return
        before, running, at = at, reduce(aggregate.evolve, decision, running), commit.version
        store.states.put(aggregate, stream_id, running, at)
        if snapshots is not None:
            await snapshots.keep(stream_id, running, at, before)
        queued.outcome.set_result(Outcome(running, commit))


def _retrieved(outcome: asyncio.Future[Any]) -> None:
    """A caller that gave up leaves no "exception never retrieved" behind."""
    if not outcome.cancelled():
        outcome.exception()
