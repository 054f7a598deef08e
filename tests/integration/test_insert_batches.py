"""Group commit on the real store: concurrent inserts leave as few commands, each caller gets its own outcome."""

from __future__ import annotations

import asyncio
import os
import uuid

import pymongo
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError, NetworkTimeout

from services.kernel.batching import InsertBatcher
from tests.integration.support import CommandNames

pytestmark = pytest.mark.integration

MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")


@pytest.fixture
async def collection():
    inserts = CommandNames()
    client = AsyncMongoClient(MONGO, tz_aware=True, event_listeners=[inserts])
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield client[name]["things"], inserts
    await client.drop_database(name)
    await client.close()


async def test_two_hundred_concurrent_inserts_go_in_a_few_commands_and_all_are_stored(collection):
    things, inserts = collection
    batcher = InsertBatcher(things)

    await asyncio.gather(*(batcher.insert_one({"_id": f"thing-{i}", "n": i}) for i in range(200)))

    assert await things.count_documents({}) == 200
    assert inserts.count("insert") <= 3, f"{inserts.count('insert')} insert commands for 200 concurrent inserts"


async def test_a_writer_alone_is_not_held_back_and_each_insert_is_one_command(collection):
    things, inserts = collection
    batcher = InsertBatcher(things)

    for i in range(5):
        await batcher.insert_one({"_id": f"thing-{i}"})

    assert inserts.count("insert") == 5
    assert await things.count_documents({}) == 5


async def test_a_duplicate_fails_only_its_own_caller(collection):
    things, _ = collection
    await things.insert_one({"_id": "taken"})
    batcher = InsertBatcher(things)

    outcomes = await asyncio.gather(
        batcher.insert_one({"_id": "before"}),
        batcher.insert_one({"_id": "taken"}),
        batcher.insert_one({"_id": "after"}),
        return_exceptions=True,
    )

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], DuplicateKeyError)
    assert sorted(d["_id"] for d in await things.find({}).to_list()) == ["after", "before", "taken"]


async def test_a_callers_deadline_bounds_its_own_wait_not_the_others(collection):
    things, _ = collection
    batcher = InsertBatcher(things)

    async def patient(i: int) -> None:
        await batcher.insert_one({"_id": f"patient-{i}"})

    async def hurried() -> None:
        with pymongo.timeout(0.000001):  # already past when it waits
            await batcher.insert_one({"_id": "hurried"})

    outcomes = await asyncio.gather(*(patient(i) for i in range(20)), hurried(), return_exceptions=True)

    assert isinstance(outcomes[-1], NetworkTimeout)
    assert outcomes[:-1] == [None] * 20
    assert await things.count_documents({"_id": {"$regex": "^patient-"}}) == 20


@pytest.mark.parametrize("after_s", [0, 0.002], ids=["before it began", "with a batch on its way"])
async def test_callers_are_not_left_waiting_when_the_batches_are_cancelled_at_stop(collection, after_s):
    things, _ = collection
    batcher = InsertBatcher(things)
    callers = [asyncio.create_task(batcher.insert_one({"_id": f"thing-{i}"})) for i in range(50)]
    await asyncio.sleep(after_s)
    assert batcher._sending is not None

    batcher._sending.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 10)

    assert all(o is None or isinstance(o, asyncio.CancelledError) for o in outcomes)
