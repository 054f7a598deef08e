"""Hot states: the latest state this process folded of each stream, so that a command need not read
its stream again.

Safe without any invalidation, because commits never change and a stream's versions have no
gaps: a state held here is the true state at its version, however old. A command decides on it
straight away and appends at the next version; if another writer (another replica, another
task) got there first, the append's version check raises ``ConcurrencyConflict`` and the retry
reads only the commits after the held version. Bounded (least recently used out), so memory does
not grow with history.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any


class Turns:
    """Tasks of one process take turns per key; a key nobody waits for holds no lock."""

    def __init__(self) -> None:
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}  # key -> its lock, tasks using it

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._turns.get(key) or (asyncio.Lock(), 0)
        self._turns[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[key]
            if users == 1:
                del self._turns[key]  # nobody waits: no lock kept per key ever seen
            else:
                self._turns[key] = (lock, users - 1)


class HotStates:
    """Stream id -> (aggregate, state, version) of the streams this process touched last."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._held: OrderedDict[str, tuple[Any, Any, int]] = OrderedDict()
        self._turns = Turns()
        #: Commands waiting for their stream's turn (kernel/commands.py ``execute``): whoever gets
        #: the turn runs the ones queued, in order, as one run of commits.
        self.queued: dict[str, list[Any]] = {}

    def turn(self, stream_id: str) -> AbstractAsyncContextManager[None]:
        """One command at a time per stream in this process.

        Tasks of one process that write the same stream (routing's roster: every assignment)
        would otherwise all decide on the same held state, all but one meet a conflict, and
        retry with a pause; in turn, each decides on the state the one before appended.
        """
        return self._turns.turn(stream_id)

    def get(self, aggregate: Any, stream_id: str) -> tuple[Any, int] | None:
        """The held state and its version, if folded by this ``aggregate``."""
        held = self._held.get(stream_id)
        if held is None or held[0] is not aggregate:
            return None
        self._held.move_to_end(stream_id)
        return held[1], held[2]

    def put(self, aggregate: Any, stream_id: str, state: Any, version: int) -> None:
        """Hold ``state`` as the stream's state at ``version`` (never replacing a later one)."""
        held = self._held.get(stream_id)
        if held is not None and held[0] is aggregate and held[2] > version:
            return
        self._held[stream_id] = (aggregate, state, version)
        self._held.move_to_end(stream_id)
        while len(self._held) > self.capacity:
            self._held.popitem(last=False)

    def forget(self, stream_id: str) -> None:
        self._held.pop(stream_id, None)

    def clear(self) -> None:
        """Hold nothing (as a process that just started)."""
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)
