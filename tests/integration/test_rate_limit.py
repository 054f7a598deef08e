"""The rate limit's contract on the real store: one limit for every replica, never more admitted
than allowed however many callers race, and a window that slides."""

from __future__ import annotations

import asyncio
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


async def test_callers_racing_on_two_replicas_are_never_admitted_beyond_the_limit(db, other_replicas_db):
    limits = [RateLimit(db, "filings", 5, MINUTE), RateLimit(other_replicas_db, "filings", 5, MINUTE)]
    for _ in range(3):  # a few rounds: each starts with what the previous ones admitted
        await asyncio.gather(*(limits[n % 2].hit("10.1.2.3") for n in range(20)))
    # Twenty racing for five places may all be refused (each counts the others' hits before they
    # withdraw them): too strict at the boundary, the safe way to be wrong.
    admitted = await db[COLLECTION].count_documents({"key": "filings:10.1.2.3"})
    assert admitted <= 5, "a refused caller withdraws its hit; the admitted ones stay"
    wait = await limits[0].hit("10.1.2.3")
    assert wait is None if admitted < 5 else 0 < wait <= 60


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


async def test_hits_past_their_window_are_swept_by_later_callers(db):
    clock = ManualClock()
    limit = RateLimit(db, "codes", 3, MINUTE, clock)
    for key in ("a", "b", "c"):
        await limit.hit(key)
    clock.advance(MINUTE)
    await limit.hit("d")
    assert [h["key"] async for h in db[COLLECTION].find({})] == ["codes:d"]
