"""Every implementation of a kernel port, as one parametrized fixture: a contract test runs on each.

The in-memory ones need nothing; MongoDB's need the document store `make test` starts (marked
``integration``), each test in a database of its own.
"""

from __future__ import annotations

import os
import uuid

import pytest
from pymongo import AsyncMongoClient

from services.kernel.commands import CollectionShelf
from services.kernel.eventstore import EventStore
from services.kernel.memory_store import InMemoryEventStore, InMemorySnapshotShelf
from tests.integration.story_events import registry

MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")
SOURCE = "/services/test"
BACKENDS = ["memory", pytest.param("mongodb", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
async def backend(request):
    """The backend's name and, for MongoDB, a fresh database (dropped afterwards)."""
    if request.param == "memory":
        yield "memory", None
        return
    client, name = AsyncMongoClient(MONGO, tz_aware=True), f"test_{uuid.uuid4().hex[:10]}"
    yield "mongodb", client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def store(backend):
    """An empty event log: ``InMemoryEventStore`` or ``EventStore`` on MongoDB."""
    kind, db = backend
    if kind == "memory":
        return InMemoryEventStore(SOURCE, registry)
    store = EventStore(db, SOURCE, registry)
    await store.setup()
    return store


@pytest.fixture
def shelf(backend):
    """An empty snapshot shelf: in memory, or a MongoDB collection."""
    kind, db = backend
    return InMemorySnapshotShelf() if kind == "memory" else CollectionShelf(db)
