"""A service's collections and indexes, created at start, and only when missing.

FerretDB 1.24 on SQLite creates a collection, or an index, while holding its metadata registry's
lock, and needs one of its few SQLite connections to do it; under load every connection may be
held by a command that waits for that lock. The database then hangs for good: every command on
it times out until FerretDB restarts (seen in `make bench`, with its goroutines dumped: an insert
into a collection that did not exist yet, the first stream digest, stuck in ``CollectionCreate``;
ADR 0032). So nothing is created under load: every collection a service writes exists before it
takes traffic (``ensure_collections`` at start, from ``Runtime.start``, ``EventStore.setup`` and
each projection's ``setup``), and an index is asked for only when missing (listing is a read).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, OperationFailure

#: The store's answer to creating a collection that exists.
NAMESPACE_EXISTS = 48


async def ensure_index(collection: AsyncCollection[dict[str, Any]], keys: Any, *, name: str, **options: Any) -> None:
    """Create the index ``name`` on ``collection`` unless it has one of that name already."""
    cursor = await collection.list_indexes()
    if name in {index["name"] async for index in cursor}:
        return
    await collection.create_index(keys, name=name, **options)


async def ensure_collections(db: AsyncDatabase[dict[str, Any]], names: Iterable[str]) -> None:
    """Create each collection of ``names`` that ``db`` lacks (another process may race: fine)."""
    existing = set(await db.list_collection_names())
    for name in sorted(set(names) - existing):
        try:
            await db.create_collection(name)
        except CollectionInvalid:
            pass  # created meanwhile by another instance (seen by the client's own check)
        except OperationFailure as exc:
            if exc.code != NAMESPACE_EXISTS:  # or by the store's, when two start at once
                raise
