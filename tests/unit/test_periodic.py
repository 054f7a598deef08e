"""Periodic work (kernel/periodic.py): every interval, only while the lease is held, a failed round
does not end the loop, and a wake-up starts the next round at once."""

from __future__ import annotations

import asyncio

from services.kernel.periodic import Periodic


async def until(condition) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 5)


class FakeLease:
    """Held or not as the test says (the real lease is tested on the store: tests/integration)."""

    def __init__(self, held: bool) -> None:
        self.held, self.released = held, False

    async def acquire(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.released = True

    async def keep(self) -> None:
        await asyncio.Event().wait()  # renewals are the real lease's (tests/integration/test_lease.py)


async def test_rounds_run_only_while_the_lease_is_held_and_a_failure_does_not_stop_them():
    rounds, lease = [], FakeLease(held=False)

    async def work():
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise ConnectionError("store away")

    loop = Periodic("test", work, lease, interval_s=0.01, first_after_s=0)
    loop.start()
    await asyncio.sleep(0.05)
    assert rounds == [], "another replica holds the lease"
    lease.held = True
    await until(lambda: len(rounds) >= 4)
    await loop.stop()

    assert rounds[:4] == [0, 1, 2, 3], "the round after the failed one ran"
    assert lease.released, "a stopped loop frees the lease for another replica"


async def test_a_wake_up_starts_the_next_round_before_the_interval():
    rounds, woken = [], asyncio.Event()

    async def work():
        rounds.append(1)

    loop = Periodic("test", work, FakeLease(held=True), interval_s=3600, wake=woken, first_after_s=0)
    loop.start()
    await until(lambda: rounds)
    woken.set()
    await until(lambda: len(rounds) >= 2)
    await loop.stop()
    assert len(rounds) >= 2
