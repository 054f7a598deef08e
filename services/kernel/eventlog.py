"""The event log's port: what application code asks of a store, met by MongoDB's and the in-memory one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from contracts.envelope import Envelope, Event, Registry
from services.kernel.eventstore import Cause, Commit
from services.kernel.states import HotStates


class EventLog(Protocol):
    """Streams of commits, each commit the events of one command, appended at the next version.

    Implemented by ``eventstore.EventStore`` (MongoDB) and ``memory_store.InMemoryEventStore``;
    tests/contract/test_event_log.py holds both to the same behaviour.
    """

    #: Decodes a stored event's type and data into its model (old versions upcast).
    registry: Registry

    #: The latest state this process folded of each stream, kept by ``commands.execute``.
    states: HotStates

    def envelope(self, event: Event, event_id: str, cause: Cause, now: datetime) -> Envelope:
        """Wrap a domain event in its CloudEvent, with the trace and correlation of its cause."""
        ...

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], cause: Cause, now: datetime | None = None
    ) -> Commit | None:
        """Append ``events`` as one commit at ``expected_version + 1``.

        Returns the commit (the earlier one if this cause was already appended: a repeat is a
        no-op), ``None`` when there is nothing to append, and raises ``ConcurrencyConflict`` when
        another commit took that version.
        """
        ...

    async def append_run(
        self, stream_id: str, expected_version: int, run: Sequence[tuple[Sequence[Event], Cause, datetime]]
    ) -> list[Commit]:
        """Append commits in a row at ``expected_version + 1``, ``+ 2`` … (each ``(events, cause,
        now)``, events not empty), in one write where the store allows.

        Returns the commits written: a prefix of ``run`` that stops before the first one not new at
        its version (the version taken, or its cause appended before); ``append`` tells which.
        """
        ...

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[Commit]:
        """The stream's commits after ``after_version``, in order."""
        ...

    async def load(self, stream_id: str, after_version: int = 0) -> tuple[list[Event], int]:
        """The stream's events after ``after_version``, decoded, and its current version."""
        ...

    def on_append(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (synchronously, cheaply) after every successful append."""
        ...
