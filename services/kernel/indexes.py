"""A service's collections and indexes, created at start, and only when missing.

FerretDB 1.24 on SQLite creates a collection, or an index, while holding its metadata registry's
lock, and needs one of its few SQLite connections to do it; under load every connection may be
held by a command that waits for that lock. The database then hangs for good: every command on
it times out until FerretDB restarts (seen in `make bench`, with its goroutines dumped: an insert
into a collection that did not exist yet, the first stream digest, stuck in ``CollectionCreate``;
ADR 0032). So nothing is created under load: every collection a service writes exists before it
takes traffic (``ensure_collections`` at start, from ``Runtime.start``, ``EventStore.setup`` and
each projection's ``setup``), and an index is asked for only when missing (listing is a read):
``ensure_indexes`` lists a collection's indexes once and creates the missing ones in one command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, ConnectionFailure, OperationFailure

#: The store's answer to creating a collection that exists.
NAMESPACE_EXISTS = 48


async def ensure_indexes(collection: AsyncCollection[dict[str, Any]], indexes: Sequence[IndexModel]) -> None:
    """Create those of ``indexes`` that ``collection`` lacks (by name): one ``listIndexes``, and
    one ``createIndexes`` only if some are missing (it takes FerretDB's lock even for an index that
    exists). Another instance may race: fine."""
    existing = await _index_names(collection)
    missing = [index for index in indexes if index.document["name"] not in existing]
    if not missing:
        return
    try:
        await collection.create_indexes(missing)
    except (ConnectionFailure, OperationFailure):
        # Created meanwhile by another instance: FerretDB 1.24 drops the connection when every one
        # of two or more indexes asked for exists already. Only what is still missing is an error.
        if not {index.document["name"] for index in missing} <= await _index_names(collection):
            raise


async def _index_names(collection: AsyncCollection[dict[str, Any]]) -> set[str]:
    return {index["name"] async for index in await collection.list_indexes()}


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
