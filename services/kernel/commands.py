"""Running a command against one stream: load, fold with ``evolve``, ``decide``, append, retry on conflict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any, Generic, TypeVar

from contracts.envelope import Event
from services.kernel.eventstore import Cause, Commit, EventStore, retry_on_conflict

S = TypeVar("S")


@dataclass(frozen=True)
class Aggregate(Generic[S]):
    """A service's pure domain for one kind of stream: its initial state and two functions."""

    initial: S
    evolve: Callable[[S, Event], S]
    decide: Callable[[S, Any, datetime], list[Event]]

    def fold(self, events: list[Event]) -> S:
        return reduce(self.evolve, events, self.initial)


async def execute(store: EventStore, aggregate: Aggregate[S], stream_id: str, command: Any,
                  cause: Cause, now: datetime | None = None) -> Commit | None:
    """Decide ``command`` on the stream's current state and append the result (retried on conflict)."""
    now = now or datetime.now(UTC)

    async def attempt() -> Commit | None:
        events, version = await store.load(stream_id)
        return await store.append(stream_id, version, aggregate.decide(aggregate.fold(events), command, now),
                                  cause, now)

    return await retry_on_conflict(attempt)
