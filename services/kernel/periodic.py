"""One way to run periodic work: every so often, on one replica at a time, never dying of a failure.

The ticks of notify (closure timers), routing (SLA timers), carrier (re-checks) and the courier
(outgoing mail and calls) all need the same loop: hold a named lease so that two replicas do not
both do the round, wait for the interval or an earlier wake-up, survive a failed round (the store
or a provider away: the next round tries again; the rounds are idempotent), and stop cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from services.kernel.lease import Lease

log = logging.getLogger(__name__)

#: A failing round is logged at most this often (a store outage is one line, not one per round).
LOG_EVERY_S = 30.0


class Periodic:
    """Runs ``work`` every ``interval_s`` while this replica holds the lease ``lease``.

    ``work`` may return how long to wait before the next round (shorter than the interval when
    work falls due sooner); setting ``wake`` starts the next round at once.
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[float | None]],
        lease: Lease,
        interval_s: float,
        wake: asyncio.Event | None = None,
        first_after_s: float | None = None,
    ) -> None:
        self.name, self.work, self.lease, self.interval_s = name, work, lease, interval_s
        self.wake = wake or asyncio.Event()
        self.first_after_s = interval_s if first_after_s is None else first_after_s
        self._stopping, self._last_failure_log = False, 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=self.name)
        return self._task

    async def run(self) -> None:
        keeper = asyncio.create_task(self.lease.keep(), name=f"{self.name}-lease")
        try:
            await self._rounds()
        finally:
            keeper.cancel()

    async def _rounds(self) -> None:
        await self._pause(self.first_after_s)
        while not self._stopping:
            self.wake.clear()  # before the round: a wake-up during it starts the next one
            pause = self.interval_s
            try:
                if await self.lease.acquire():
                    pause = min(pause, await self.work() or pause)
            except Exception as exc:  # the next round tries again; every round is idempotent
                if (now := time.monotonic()) - self._last_failure_log > LOG_EVERY_S:
                    self._last_failure_log = now
                    log.warning(
                        "%s round failed; retrying every %.1f s",
                        self.name,
                        self.interval_s,
                        exc_info=exc,
                        extra={"fields": {"task": self.name, "error": repr(exc)}},
                    )
            await self._pause(pause)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except TimeoutError:
            pass

    async def stop(self) -> None:
        """Let the current round finish, then end (and free the lease for another replica)."""
        self._stopping = True
        self.wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.lease.release()
        except Exception:  # the store is away: the lease simply expires
            pass
