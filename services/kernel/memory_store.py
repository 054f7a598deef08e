"""The event log and its snapshots in memory, for tests of application code: MongoDB's behaviour, no I/O."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Envelope, Event, Registry
from services.kernel.eventstore import (
    Cause,
    Commit,
    ConcurrencyConflict,
    commit_document,
    commit_id_of,
    envelope,
    stream_key,
)
from services.kernel.states import HotStates


class InMemoryEventStore:
    """``EventLog`` on dictionaries: the same commit documents, ids, versions and conflicts as
    ``EventStore``, without its ``pending`` list (the log follower's business, not a use case's).

    Each call yields to the event loop once, as a database round trip does, so that concurrent
    commands in a test interleave and meet the conflicts they would meet on MongoDB.
    """

    def __init__(self, source: str, registry: Registry) -> None:
        self.source, self.registry = source, registry
        self.commits: dict[str, dict[str, Any]] = {}  # stream_key -> commit document
        self._keys: dict[str, str] = {}  # commit id -> stream key: MongoDB's unique index on commit_id
        self._listeners: list[Callable[[], None]] = []
        self._last_position = 0
        self.states = HotStates()

    def on_append(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def envelope(self, event: Event, event_id: str, cause: Cause, now: datetime) -> Envelope:
        return envelope(self.source, event, event_id, cause, now)

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], cause: Cause, now: datetime | None = None
    ) -> Commit | None:
        if not events:
            return None
        await asyncio.sleep(0)
        now = now or datetime.now(UTC)
        commit_id, key = commit_id_of(stream_id, cause), stream_key(stream_id, expected_version + 1)
        # The order of EventStore's checks: a version taken by another cause is a conflict even when
        # this cause is further back in the stream; the retry on fresh state then finds it there.
        if (taken := self.commits.get(key)) is not None and taken["commit_id"] != commit_id:
            raise ConcurrencyConflict(stream_id, expected_version)
        if commit_id in self._keys:  # this cause was appended before (at this or an earlier version)
            return self._commit(self._keys[commit_id])
        self._last_position += 1
        doc = commit_document(self.source, stream_id, expected_version + 1, self._last_position, events, cause, now)
        stored = copy.deepcopy(doc)
        stored["recorded_at"] = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as BSON keeps it
        self.commits[key], self._keys[commit_id] = stored, key
        for listener in self._listeners:
            listener()
        return Commit.from_doc(doc)

    async def append_run(
        self, stream_id: str, expected_version: int, run: Sequence[tuple[Sequence[Event], Cause, datetime]]
    ) -> list[Commit]:
        written: list[Commit] = []
        for events, cause, now in run:
            version = expected_version + len(written)
            key, commit_id = stream_key(stream_id, version + 1), commit_id_of(stream_id, cause)
            if key in self.commits or commit_id in self._keys:
                break  # not new at its version: the caller's ``append`` says why
            try:
                commit = await self.append(stream_id, version, events, cause, now)
            except ConcurrencyConflict:
                break
            if commit is None or commit.id != commit_id or commit.version != version + 1:
                break
            written.append(commit)
        return written

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[Commit]:
        await asyncio.sleep(0)
        commits, version = [], after_version + 1
        while (key := stream_key(stream_id, version)) in self.commits:
            commits.append(self._commit(key))
            version += 1
        return commits

    async def load(self, stream_id: str, after_version: int = 0) -> tuple[list[Event], int]:
        commits = await self.read_stream(stream_id, after_version)
        events = [self.registry.decode(e.type, e.data) for c in commits for e in c.events]
        return events, (commits[-1].version if commits else after_version)

    def _commit(self, key: str) -> Commit:
        # A copy, as a database returns: a caller's changes never reach what was appended.
        return Commit.from_doc(copy.deepcopy(self.commits[key]))


class InMemorySnapshotShelf:
    """``SnapshotShelf`` (kernel/commands.py) on a dictionary: the latest stored snapshot of each stream."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def get(self, stream_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(stream_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def put(self, stream_id: str, version: int, state: dict[str, Any]) -> None:
        self.docs[stream_id] = {"_id": stream_id, "version": version, "state": copy.deepcopy(state)}
