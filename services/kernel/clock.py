"""Time as a dependency: the system clock in production, a clock the test moves by hand.

Timers (reminders, retries, "once a day") read ``clock.now()`` instead of the wall clock, so a
test can let twelve days pass in a moment and nothing is ever slept.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


def as_utc(moment: datetime) -> datetime:
    """A time as UTC when it carries no zone: what a store client without ``tz_aware`` reads back
    (every time we store is UTC), or a mail's ``-0000`` date. A time with a zone is kept as it is."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until ``advance`` moves it (for tests and replays)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> datetime:
        self._now += by
        return self._now


class OffsetClock:
    """The wall clock moved on by hand: it runs as time does, ``advance`` jumps it ahead. For a
    server a test shares with others, where a clock that stood still would stop its timers."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, by: timedelta) -> datetime:
        self._offset += by
        return self.now()

    def reset(self) -> None:
        self._offset = timedelta()
