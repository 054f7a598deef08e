"""Running a command against one stream: load, fold with ``evolve``, ``decide``, append, retry on conflict."""

from __future__ import annotations

import logging
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
    """
    now = now or datetime.now(UTC)
    optimistic = True

    async def attempt() -> Outcome[S]:
        nonlocal optimistic
        held = store.states.get(aggregate, stream_id) if optimistic else None
        if held is None and optimistic and new_stream:
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
        commit = await store.append(stream_id, version, decided, cause, now)
        if commit is not None and commit.version != version + 1:
            return Outcome(state, commit)  # appended before: the state decided on already holds it
        after = reduce(aggregate.evolve, decided, state)
        if commit is not None:
            store.states.put(aggregate, stream_id, after, commit.version)
            if snapshots is not None:
                await snapshots.keep(stream_id, after, commit.version, version)
        return Outcome(after, commit)

    async with store.states.turn(stream_id):
        outcome: Outcome[S] = await retry_on_conflict(attempt)
        return outcome
