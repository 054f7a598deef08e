"""The rate limit's contract on the real store: one limit for every replica, never more admitted
than allowed however many callers race, and a window that slides."""

from __future__ import annotations

import asyncio
import math
import re
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from services.kernel.clock import ManualClock
from services.kernel.ratelimit import COLLECTION, RateLimit, setup

MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
async def hits_collection(db):
    await setup(db)  # as Runtime.start does, before any hit


@pytest.fixture
async def other_replicas_db(settings, db):  # db: the first replica's client; dropped after the test
    client = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    yield client[settings.database_name]
    await client.close()


async def test_two_replicas_on_their_own_clients_share_one_limit(db, other_replicas_db):
    one, two = RateLimit(db, "codes", 3, MINUTE), RateLimit(other_replicas_db, "codes", 3, MINUTE)
    answers = [await replica.hit("sel-48213") for replica in (one, two, one, two, one)]
    assert answers[:3] == [None, None, None]
    assert all(wait is not None and 0 < wait <= 60 for wait in answers[3:]), answers
    assert await one.hit("sel-00001") is None, "another key has its own limit"
    assert await RateLimit(db, "callbacks", 3, MINUTE).hit("sel-48213") is None, "another limit too"


async def test_callers_racing_on_two_replicas_are_admitted_up_to_the_limit_and_never_beyond(db, other_replicas_db):
    limits = [RateLimit(db, "filings", 5, MINUTE), RateLimit(other_replicas_db, "filings", 5, MINUTE)]
    answers = []
    for _ in range(3):  # a few rounds: each starts with what the previous ones admitted
        answers += await asyncio.gather(*(limits[n % 2].hit("10.1.2.3") for n in range(20)))

    assert answers.count(None) == 5, "every place is taken by one caller: none left empty, none twice"
    assert all(0 < wait <= 60 for wait in answers if wait is not None)
    assert len(await tickets_of(db, "filings:10.1.2.3")) == 5, "a refused caller takes no ticket"


async def test_callers_racing_within_the_limit_are_all_admitted(db, other_replicas_db):
    limits = [RateLimit(db, "filings", 5, MINUTE), RateLimit(other_replicas_db, "filings", 5, MINUTE)]
    assert await asyncio.gather(*(limits[n % 2].hit("10.1.2.3") for n in range(5))) == [None] * 5
    assert await limits[1].hit("10.1.2.3") is not None


async def test_the_window_slides_and_retry_after_says_when_there_is_room_again(db):
    clock = ManualClock()
    limit = RateLimit(db, "callbacks", 2, MINUTE, clock)
    assert await limit.hit("+447700900123") is None
    clock.advance(timedelta(seconds=30))
    assert await limit.hit("+447700900123") is None
    clock.advance(timedelta(seconds=10))
    assert await limit.hit("+447700900123") == 20, "the first hit leaves the window 60 s after it"
    clock.advance(timedelta(seconds=21))
    assert await limit.hit("+447700900123") is None, "the first hit has left; the refused one never counted"
    assert await limit.hit("+447700900123") == 29, "now the second hit (at 30 s) is the one to wait for"


async def test_tickets_past_their_window_are_swept_by_later_callers(db):
    clock = ManualClock()
    limit = RateLimit(db, "codes", 3, MINUTE, clock)
    for key in ("a", "b", "c"):
        await limit.hit(key)
    clock.advance(2 * MINUTE)  # an epoch's tickets go together, once the next epoch is over too
    await limit.hit("d")
    assert [t["_id"].split("@")[0] async for t in db[COLLECTION].find({})] == ["codes:d"]


class CountedCalls:
    """The tickets' collection, every call counted (what a limit sends the store)."""

    def __init__(self, collection):
        self.collection, self.calls = collection, []

    def __getattr__(self, name):
        method = getattr(self.collection, name)

        async def counted(*args, **kwargs):
            self.calls.append(name)
            return await method(*args, **kwargs)

        return counted


def counted(limit: RateLimit) -> CountedCalls:
    limit.tickets = calls = CountedCalls(limit.tickets)
    return calls


async def test_a_hit_reads_and_writes_tickets_by_id_only_and_a_known_key_costs_one_insert(db):
    limit = RateLimit(db, "callbacks", 3, MINUTE, ManualClock())
    await limit.hit("+447700900001")  # the first hit of the limit also sweeps
    calls = counted(limit)

    assert await limit.hit("+447700900002") is None
    assert calls.calls == ["find_one", "insert_one"], "a new key: the previous epoch's first ticket, then its own"
    calls.calls.clear()
    assert await limit.hit("+447700900002") is None
    assert calls.calls == ["insert_one"], "a key this process served: its next number is known"


async def test_hits_of_one_key_racing_in_one_process_take_turns_and_never_meet(db):
    limit = RateLimit(db, "clients", 1000, MINUTE)
    calls = counted(limit)

    assert await asyncio.gather(*(limit.hit("127.0.0.1") for _ in range(20))) == [None] * 20

    assert calls.calls.count("insert_one") == 20, "each knew the number the one before it took"
    assert calls.calls.count("find_one") == 1, "the previous epoch's first ticket, once"


async def test_a_key_at_its_limit_is_refused_without_the_store_until_there_is_room_again(db):
    clock = ManualClock()
    limit = RateLimit(db, "callbacks", 2, MINUTE, clock)
    assert [await limit.hit("+447700900003") for _ in range(2)] == [None, None]
    calls = counted(limit)

    assert await limit.hit("+447700900003") == 60
    clock.advance(timedelta(seconds=20))
    assert [await limit.hit("+447700900003") for _ in range(100)] == [40] * 100
    assert calls.calls == [], "room comes only with time: the first refusal says when"
    clock.advance(timedelta(seconds=40))
    assert await limit.hit("+447700900003") is None


async def test_a_replica_new_to_a_busy_key_finds_its_next_ticket_in_a_few_lookups(db, other_replicas_db):
    busy, newcomer = RateLimit(db, "clients", 1000, MINUTE), RateLimit(other_replicas_db, "clients", 1000, MINUTE)
    for _ in range(300):
        assert await busy.hit("127.0.0.1") is None
    calls = counted(newcomer)

    assert await newcomer.hit("127.0.0.1") is None

    assert len(calls.calls) <= 2 * math.ceil(math.log2(300)) + 4, calls.calls
    assert len(await tickets_of(db, "clients:127.0.0.1")) == 301


async def tickets_of(db, key: str) -> list[str]:
    return [t["_id"] async for t in db[COLLECTION].find({"_id": {"$regex": f"^{re.escape(key)}@"}})]
