"""A sliding-window rate limit per key, kept in the store so that every replica shares it, and read
and written by ``_id`` only (ADR 0036).

An admitted hit takes a numbered place ("ticket") of its key: ``<limit>:<key>@<epoch>#<i>``, the
``i``-th of the key in its epoch (the window's length of time it falls in). The tickets of an
epoch are numbered from 0 without gaps: a caller inserts the lowest number not known to be taken
— the insert against the unique ``_id`` is the one operation FerretDB applies atomically — and
moves on past each one taken. Read as one sequence (the previous epoch's, then this one's), the
tickets say exactly what a sliding window needs: a new hit is admitted unless the ``limit``-th
most recent ticket is younger than the window, and ``Retry-After`` is when that ticket leaves it.
A refused hit takes no ticket, so no refusal ever has to be withdrawn.

Why not count the key's hits (the former design): FerretDB on SQLite answers only ``_id``
equality from an index and scans the whole collection for any other filter — every key's hits —
so each hit cost a scan that grew with traffic (30 ms at 1,000 live hits; under a burst its counts
ran past their time limit and intake refused everything). Here a new key costs two lookups by
``_id`` (the previous epoch's first ticket; the insert), a key this process served before one
insert, a key at its limit one lookup and then nothing until there is room again.

A ticket expires with its epoch's successor (two windows after its epoch began): an epoch's
tickets are swept out together, never some of them, so the numbering read by a later caller has
no holes. FerretDB 1.24 refuses TTL indexes, so whoever hits a limit sweeps (a scan: rarely).
Every limit shares one collection; ``setup`` creates it and its index at start (Runtime.start).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.kernel.clock import Clock, SystemClock, as_utc
from services.kernel.indexes import ensure_collections, ensure_indexes
from services.kernel.resilience import TtlCache
from services.kernel.states import Turns

COLLECTION = "rate_limit_hits"
#: The tickets past their time (the sweep); every other read and write names an ``_id``.
INDEXES = (IndexModel("expires", name="expires"),)
#: A sweep at most this often per limit (or per quarter of its window, if that is longer).
SWEEP_EVERY = timedelta(seconds=10)
_EPOCH_ZERO = datetime(2000, 1, 1, tzinfo=UTC)


async def setup(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Create the tickets' collection and index, for every limit of ``db`` (at start: idempotent)."""
    await ensure_collections(db, [COLLECTION])
    await ensure_indexes(db[COLLECTION], for_queries=INDEXES)


class RateLimit:
    """At most ``limit`` hits per ``window`` (sliding) for each key of the limit called ``name``;
    its database's ``setup`` must have run (``Runtime.start`` does it)."""

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], name: str, limit: int, window: timedelta, clock: Clock | None = None
    ) -> None:
        self.tickets, self.name, self.limit, self.window = db[COLLECTION], name, limit, window
        self.clock = clock or SystemClock()
        self._next_sweep = self.clock.now()
        seconds = 3 * window.total_seconds()  # nothing cached outlives the tickets it stands for
        #: What this process learnt, never wrong for long: the lowest number of an epoch not known
        #: to be taken (a lower bound: others take numbers too), a closed epoch's count (final),
        #: a ticket's time (never changes), and the time before which a key has no room (room
        #: comes only with time: admitted tickets are never withdrawn).
        self._next: TtlCache[int] = TtlCache(seconds)
        self._count: TtlCache[int] = TtlCache(seconds)
        self._time: TtlCache[datetime] = TtlCache(seconds)
        self._full_until: TtlCache[datetime] = TtlCache(seconds)
        self._turns = Turns()

    async def hit(self, key: str) -> int | None:
        """Count a hit; None if allowed, else the whole seconds to wait (for ``Retry-After``)."""
        key = f"{self.name}:{key}"
        if (wait := self._known_full(key)) is not None:
            return wait
        await self._sweep(self.clock.now())
        # In turn per key: hits of one key racing in this process would all try the same number,
        # and every loser would look for the next one (measured: about 8 lookups a filing, two
        # hits, in a burst from one address). In turn, each knows the number the one before took;
        # only other replicas' hits can still be met.
        async with self._turns.turn(key):
            return await self._take(key)

    def _known_full(self, key: str) -> int | None:
        """The wait, if this process knows the key has no room yet (room comes only with time)."""
        now = self.clock.now()
        full_until = self._full_until.get(key, now.timestamp())
        return _seconds(full_until - now, self.window) if full_until is not None and now < full_until else None

    async def _take(self, key: str) -> int | None:
        # Again after the wait in line: the hit before may have taken the last place. The time is
        # read after it too, so a ticket taken meanwhile never looks younger than this hit.
        if (wait := self._known_full(key)) is not None:
            return wait
        now = self.clock.now()
        clock_s = now.timestamp()
        epoch = (now - _EPOCH_ZERO) // self.window
        before = await self._epoch_count(key, epoch - 1, clock_s)  # closed: its count is final
        number = self._next.get(f"{key}@{epoch}", clock_s) or 0
        while True:
            # The ``limit``-th most recent ticket of the sequence (previous epoch's, then this one's).
            if (oldest := before + number - self.limit) >= 0:
                in_previous = oldest < before
                taken = await self._ticket_time(
                    key, epoch - 1 if in_previous else epoch, oldest if in_previous else oldest - before, clock_s
                )
                if taken is not None and taken > now - self.window:
                    self._full_until.put(key, taken + self.window, clock_s)
                    return _seconds(taken + self.window - now, self.window)
            ticket = _ticket(key, epoch, number)
            try:
                await self.tickets.insert_one(
                    {"_id": ticket, "at": now, "expires": _EPOCH_ZERO + (epoch + 2) * self.window}
                )
            except DuplicateKeyError:  # taken by another caller: the next free one, checked again
                number = await self._first_free(key, epoch, number + 1)
                continue
            self._next.put(f"{key}@{epoch}", number + 1, clock_s)
            self._time.put(ticket, now, clock_s)
            return None

    async def _epoch_count(self, key: str, epoch: int, clock_s: float) -> int:
        """How many tickets the key took in ``epoch`` (a closed one: cached for good)."""
        if (count := self._count.get(f"{key}@{epoch}", clock_s)) is None:
            count = await self._first_free(key, epoch, self._next.get(f"{key}@{epoch}", clock_s) or 0)
            self._count.put(f"{key}@{epoch}", count, clock_s)
        return count

    async def _first_free(self, key: str, epoch: int, number: int) -> int:
        """The lowest ticket number of the epoch not taken, from ``number`` (known: all below it are
        taken). Numbers have no gaps, so lookups that double, then halve, find it in a few."""
        if not await self._exists(key, epoch, number):
            return number
        taken, step = number, 1
        while await self._exists(key, epoch, taken + step):
            taken, step = taken + step, step * 2
        free = taken + step
        while free - taken > 1:  # taken is, free is not: the first free lies in (taken, free]
            middle = (taken + free) // 2
            taken, free = (middle, free) if await self._exists(key, epoch, middle) else (taken, middle)
        return free

    async def _exists(self, key: str, epoch: int, number: int) -> bool:
        return await self.tickets.find_one({"_id": _ticket(key, epoch, number)}, {"_id": 1}) is not None

    async def _ticket_time(self, key: str, epoch: int, number: int, clock_s: float) -> datetime | None:
        """When the ticket was taken (None: it is gone, so past its window)."""
        ticket = _ticket(key, epoch, number)
        if (at := self._time.get(ticket, clock_s)) is None:
            doc = await self.tickets.find_one({"_id": ticket}, {"at": 1})
            if doc is None:
                return None
            at = as_utc(doc["at"])
            self._time.put(ticket, at, clock_s)
        return at

    async def _sweep(self, now: datetime) -> None:
        """Every limit's tickets past their time out (FerretDB 1.24 refuses TTL indexes): a scan of
        the collection, so seldom — an epoch's tickets all expire together anyway."""
        if now >= self._next_sweep:
            self._next_sweep = now + max(SWEEP_EVERY, self.window / 4)
            await self.tickets.delete_many({"expires": {"$lte": now}})


def _ticket(key: str, epoch: int, number: int) -> str:
    return f"{key}@{epoch}#{number}"


def _seconds(wait: timedelta, window: timedelta) -> int:
    """Whole seconds, at least one and never more than the window (a ticket another replica took a
    moment after this hit's time would say a little more)."""
    return max(1, min(math.ceil(window.total_seconds()), math.ceil(wait.total_seconds())))
