"""Running a command against one stream: load, fold with ``evolve``, ``decide``, append, retry on conflict."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from contracts.envelope import Event
from services.kernel.eventlog import EventLog
from services.kernel.eventstore import Cause, Commit, retry_on_conflict

S = TypeVar("S")
log = logging.getLogger(__name__)


class Value(BaseModel):
    """Base of a pure domain's commands and states: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class Aggregate(Generic[S]):
    """A service's pure domain for one kind of stream: its initial state and two functions."""

    initial: S
    evolve: Callable[[S, Event], S]
    decide: Callable[[S, Any, datetime], list[Event]]

    def fold(self, events: list[Event]) -> S:
        return reduce(self.evolve, events, self.initial)


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

    def __init__(self, db: AsyncDatabase) -> None:
        self.docs = db["snapshots"]

    async def get(self, stream_id: str) -> dict[str, Any] | None:
        return await self.docs.find_one({"_id": stream_id})

    async def put(self, stream_id: str, version: int, state: dict[str, Any]) -> None:
        await self.docs.replace_one({"_id": stream_id}, {"_id": stream_id, "version": version, "state": state},
                                    upsert=True)


class Snapshots:
    """The folded state of long streams (the roster), so a command does not re-read one from its start.

    Kept in memory (the latest state this process saw) and, every ``every`` versions, on a shelf:
    a database's ``snapshots`` collection (where a restarted process starts) or, in tests, memory_store's.
    Commits never change and versions have no gaps, so any snapshot is the true state at its
    version: racing writers, a stale copy or a lost write cost only re-reading a few commits. A
    stored snapshot that no longer fits the state's model (the code changed) is ignored and the
    stream replayed.
    """

    def __init__(self, shelf: AsyncDatabase | SnapshotShelf, every: int = 100) -> None:
        self.shelf = CollectionShelf(shelf) if isinstance(shelf, AsyncDatabase) else shelf
        self.every = every
        self.memory: dict[str, tuple[Any, int]] = {}

    async def load(self, store: EventLog, aggregate: Aggregate[S], stream_id: str) -> tuple[S, int]:
        state, version = self.memory.get(stream_id) or await self._stored(aggregate, stream_id)
        events, version = await store.load(stream_id, version)
        state = reduce(aggregate.evolve, events, state)
        self.memory[stream_id] = (state, version)
        return state, version

    async def keep(self, stream_id: str, state: S, version: int, before: int) -> None:
        self.memory[stream_id] = (state, version)
        if version // self.every > before // self.every:
            await self.shelf.put(stream_id, version, state.model_dump(mode="json"))

    async def _stored(self, aggregate: Aggregate[S], stream_id: str) -> tuple[S, int]:
        doc = await self.shelf.get(stream_id)
        try:
            if doc is not None:
                return type(aggregate.initial).model_validate(doc["state"]), doc["version"]
        except ValidationError:
            log.warning("snapshot of %s no longer fits its model; replaying the stream", stream_id)
        return aggregate.initial, 0


async def execute(store: EventLog, aggregate: Aggregate[S], stream_id: str, command: Any,
                  cause: Cause, now: datetime | None = None,
                  snapshots: Snapshots | None = None) -> Outcome[S]:
    """Decide ``command`` on the stream's current state and append the result (retried on conflict).

    With ``snapshots`` the state is read from the last snapshot plus the commits after it.
    """
    now = now or datetime.now(UTC)

    async def attempt() -> Outcome[S]:
        if snapshots is None:
            events, version = await store.load(stream_id)
            state = aggregate.fold(events)
        else:
            state, version = await snapshots.load(store, aggregate, stream_id)
        decided = aggregate.decide(state, command, now)
        commit = await store.append(stream_id, version, decided, cause, now)
        if commit is not None and commit.version != version + 1:
            return Outcome(state, commit)  # appended before: the loaded state already holds it
        after = reduce(aggregate.evolve, decided, state)
        if snapshots is not None and commit is not None:
            await snapshots.keep(stream_id, after, commit.version, version)
        return Outcome(after, commit)

    return await retry_on_conflict(attempt)
