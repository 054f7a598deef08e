"""Collections and indexes are created at start, once: nothing is created while traffic flows.

FerretDB 1.24 hangs a database for good when it must create a collection under load (ADR 0032),
so a service creates every collection it writes before it takes traffic, and asks for an index
only when it is missing (``createIndexes`` takes the same lock, even for an index that exists).
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from pymongo import ASCENDING, AsyncMongoClient, IndexModel

from services.kernel import ratelimit
from services.kernel.eventstore import EventStore
from services.kernel.indexes import ensure_collections, ensure_indexes, uses_secondary_indexes
from services.kernel.projections import DocumentProjection
from services.kernel.runtime import Runtime
from tests.integration.support import CommandNames, wait_for

pytestmark = pytest.mark.integration

MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")


@pytest.fixture
async def database():
    commands = CommandNames()
    client = AsyncMongoClient(MONGO, tz_aware=True, event_listeners=[commands])
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield client[name], commands
    await client.drop_database(name)
    await client.close()


async def test_missing_collections_are_created_and_existing_ones_left_alone(database):
    db, _ = database
    await db["kept"].insert_one({"_id": "mine"})

    await ensure_collections(db, ["kept", "new_one", "new_two"])
    await ensure_collections(db, ["kept", "new_one", "new_two"])  # again: nothing to do

    assert {"kept", "new_one", "new_two"} <= set(await db.list_collection_names())
    assert await db["kept"].find_one({"_id": "mine"}) == {"_id": "mine"}


async def test_two_instances_creating_the_same_collections_at_once_both_start(database):
    db, _ = database

    await asyncio.gather(*(ensure_collections(db, ["shared", "also_shared"]) for _ in range(4)))

    assert {"shared", "also_shared"} <= set(await db.list_collection_names())


async def index_names(collection) -> set[str]:
    return {index["name"] async for index in await collection.list_indexes()}


async def test_an_index_that_exists_is_not_asked_for_again(database):
    db, commands = database
    await ensure_indexes(db["things"], [IndexModel("position", name="position")])
    commands.names.clear()

    await ensure_indexes(db["things"], [IndexModel("position", name="position")])

    assert commands.names == ["listIndexes"], "no createIndexes: FerretDB takes its lock even for one that exists"
    assert "position" in await index_names(db["things"])


async def test_only_the_missing_indexes_are_created_in_one_command(database):
    db, commands = database
    await ensure_indexes(db["things"], [IndexModel("position", name="position")])
    created = []
    create_indexes = db["things"].create_indexes

    async def recording(indexes, *args, **kwargs):
        created.append([index.document["name"] for index in indexes])
        return await create_indexes(indexes, *args, **kwargs)

    things = db["things"]
    things.create_indexes = recording
    commands.names.clear()

    await ensure_indexes(
        things,
        [IndexModel("position", name="position"), IndexModel("at", name="at"), IndexModel("key", name="key")],
    )

    assert commands.names == ["listIndexes", "createIndexes"]
    assert created == [["at", "key"]]
    assert {"position", "at", "key"} <= await index_names(db["things"])


async def test_two_instances_creating_the_same_indexes_at_once_both_start(database):
    db, _ = database
    indexes = [IndexModel("position", name="position"), IndexModel("at", name="at")]

    # all but one find every index created when they ask (FerretDB then drops their connection)
    await asyncio.gather(*(ensure_indexes(db["shared"], indexes) for _ in range(4)))

    assert {"position", "at"} <= await index_names(db["shared"])


async def test_the_event_stores_setup_lists_each_collections_indexes_once(database, test_registry):
    db, commands = database
    store = EventStore(db, "/services/test", test_registry)

    await store.setup()
    assert commands.count("listIndexes") == 1, "one listing for the commits' three indexes"
    assert commands.count("createIndexes") == 1
    commands.names.clear()
    await store.setup()  # a second instance starting: reads only

    assert commands.count("listIndexes") == 1
    assert "createIndexes" not in commands.names and "create" not in commands.names
    for_queries = {"position", "stream_version"} if await uses_secondary_indexes(db) else set()
    assert await index_names(db["commits"]) == {"_id_", "commit_id"} | for_queries


async def test_an_index_that_serves_only_queries_is_made_only_where_the_store_answers_queries_from_it(database):
    """FerretDB 1.x reads the whole collection for every query but one by ``_id``: there an index
    for sorts and ranges would only slow each insert and delete down. A unique one is a rule of
    the data, made everywhere."""
    db, _ = database
    await ensure_indexes(
        db["things"],
        [IndexModel("key", unique=True, name="key")],
        for_queries=[IndexModel("position", name="position")],
    )

    ferretdb = "ferretdbVersion" in await db.client.admin.command("buildInfo")
    assert await uses_secondary_indexes(db) is not ferretdb
    assert await index_names(db["things"]) == {"_id_", "key"} | (set() if ferretdb else {"position"})


async def test_a_started_runtime_has_every_kernel_collection_before_any_event(settings, topic, test_registry, db):
    runtime = Runtime.create(settings, test_registry, topic, collections=["own_things"])
    await runtime.start()
    try:
        created = set(await db.list_collection_names())
    finally:
        await runtime.stop()

    kernel = {"commits", "pending", "stream_digests", "snapshots", "inbox", "dead_lettered", "leases", "idempotency"}
    kernel |= {"rate_limit_hits"}
    assert kernel | {"own_things"} <= created


async def test_a_started_runtime_has_the_rate_limits_index_before_any_request(settings, topic, test_registry, db):
    runtime = Runtime.create(settings, test_registry, topic)
    await runtime.start()
    try:
        indexes = {index["name"]: index["key"] async for index in await db[ratelimit.COLLECTION].list_indexes()}
        hits = await db[ratelimit.COLLECTION].count_documents({})
    finally:
        await runtime.stop()

    assert hits == 0, "no request yet: the index is there before the first hit"
    if await uses_secondary_indexes(db):
        assert dict(indexes["expires"]) == {"expires": ASCENDING}, "the sweep's (every other access is by _id)"
    else:
        assert "expires" not in indexes, "the sweep reads the collection anyway: no index to keep up"


async def test_a_started_runtime_sets_its_read_models_up_once(settings, topic, test_registry, db):
    setups = []

    class Things(DocumentProjection):
        name = "things"

        async def setup(self) -> None:
            setups.append(self.name)
            await super().setup()

    runtime = Runtime.create(settings, test_registry, topic, projections=[Things])
    await runtime.start()
    try:
        # the log follower has taken its lease: its first round is under way or done
        await wait_for(lambda: runtime.follower is not None and runtime.follower.lease.generation)
    finally:
        await runtime.stop()

    assert setups == ["things"], "at start, before traffic; not again when the log follower runs"


async def test_a_read_models_scan_comes_back_in_one_batch_and_leaves_no_cursor_open(database):
    db, commands = database

    class Things(DocumentProjection):
        name = "things"

    await db["things"].insert_many([{"_id": f"thing-{i}", "n": i} for i in range(300)])
    commands.names.clear()

    found = await Things(db).scan({"n": {"$gte": 0}}, {"_id": 1})

    assert len(found) == 300
    assert commands.names == ["find"], "a getMore means a cursor stayed open between batches"
