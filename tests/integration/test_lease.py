"""The lease that makes one replica the follower (or the courier, or a ticker): taken, kept, handed
over, on the real store — and a replica that waits for it does not keep asking the store."""

from __future__ import annotations

import asyncio
from typing import Any

from services.kernel.lease import Lease


class CountedCalls:
    """A collection whose every call is counted (what a replica sends the store)."""

    def __init__(self, collection: Any) -> None:
        self.collection, self.calls = collection, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.collection, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await method(*args, **kwargs)

        return counted


async def test_a_replica_waiting_for_the_lease_looks_once_per_sixth_of_its_lifetime(db):
    holder, waiting = Lease(db, "follower", ttl_s=2.0), Lease(db, "follower", ttl_s=2.0)
    assert await holder.acquire()
    waiting._leases = counted = CountedCalls(waiting._leases)  # type: ignore[assignment]

    assert not await waiting.acquire()
    asked_first = counted.calls
    for _ in range(50):  # the follower is woken at every append
        assert not await waiting.acquire()

    assert asked_first == 1, "one look at who holds it, and until when"
    assert counted.calls == asked_first, "no store command until a sixth of the lifetime has passed"


async def test_a_lease_released_at_a_holders_stop_is_taken_within_a_sixth_of_its_lifetime(db):
    holder, waiting = Lease(db, "follower", ttl_s=2.0), Lease(db, "follower", ttl_s=2.0)
    assert await holder.acquire()
    assert not await waiting.acquire()

    await holder.release()
    taken_after = 0.0
    while not await waiting.acquire():
        await asyncio.sleep(0.02)
        taken_after += 0.02

    assert taken_after <= 2.0 / 6 + 0.1, f"taken {taken_after:.2f} s after the release"
    assert waiting.generation == 1
    assert not await holder.acquire(), "the one that let it go waits its turn too"


async def test_a_lease_left_by_a_holder_that_died_is_taken_once_it_expires(db):
    crashed, waiting = Lease(db, "follower", ttl_s=0.5), Lease(db, "follower", ttl_s=0.5)
    assert await crashed.acquire()  # and never renews it
    assert not await waiting.acquire()

    await asyncio.sleep(0.6)

    assert await waiting.acquire()


async def test_the_keeper_holds_the_lease_through_work_longer_than_its_lifetime(db):
    holder, waiting = Lease(db, "follower", ttl_s=0.6), Lease(db, "follower", ttl_s=0.6)
    assert await holder.acquire()
    keeper = asyncio.create_task(holder.keep())
    try:
        for _ in range(8):  # 1.6 s of work without a call to acquire: nearly three lifetimes
            await asyncio.sleep(0.2)
            assert holder.held()
            assert not await waiting.acquire()
    finally:
        keeper.cancel()

    await asyncio.sleep(0.7)  # the holder hangs: nobody renews it any more

    assert not holder.held()
    assert await waiting.acquire(), "taken once its last renewal expired"
    assert not await holder.renew(), "the old holder learns it lost the lease"
