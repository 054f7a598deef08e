"""Running a command against one stream: load, fold with ``evolve``, ``decide``, append, retry on conflict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from contracts.envelope import Event
from services.kernel.eventstore import Cause, Commit, EventStore, retry_on_conflict

S = TypeVar("S")


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


async def execute(store: EventStore, aggregate: Aggregate[S], stream_id: str, command: Any,
                  cause: Cause, now: datetime | None = None) -> Outcome[S]:
    """Decide ``command`` on the stream's current state and append the result (retried on conflict)."""
    now = now or datetime.now(UTC)

    async def attempt() -> Outcome[S]:
        events, version = await store.load(stream_id)
        state = aggregate.fold(events)
        decided = aggregate.decide(state, command, now)
        commit = await store.append(stream_id, version, decided, cause, now)
        if commit is not None and commit.version != version + 1:
            return Outcome(state, commit)  # appended before: the loaded state already holds it
        return Outcome(reduce(aggregate.evolve, decided, state), commit)

    return await retry_on_conflict(attempt)
