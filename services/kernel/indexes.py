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


async def ensure_indexes(
    collection: AsyncCollection[dict[str, Any]],
    indexes: Sequence[IndexModel] = (),
    *,
    for_queries: Sequence[IndexModel] = (),
) -> None:
    """Create those of ``indexes`` that ``collection`` lacks (by name): one ``listIndexes``, and
    one ``createIndexes`` only if some are missing (it takes FerretDB's lock even for an index that
    exists). Another instance may race: fine.

    ``for_queries``: indexes that serve only queries (sorts, ranges; no constraint), created only
    on a store that answers queries from them. FerretDB 1.x answers every query but ``_id``
    equality by reading the collection, so there such an index is only a cost: each insert and
    delete updates it (measured on commits: 2,256-2,552 inserts/s with ``position`` and
    ``stream_version`` beside ``_id`` and ``commit_id``, 2,844-3,614/s without; docs/adr/0041).
    """
    if for_queries and await uses_secondary_indexes(collection.database):
        indexes = [*indexes, *for_queries]
    if not indexes:
        return
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


#: Per client (by id): whether its store answers queries from secondary indexes.
_answers_from_indexes: dict[int, bool] = {}


async def uses_secondary_indexes(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether the store answers queries from indexes other than ``_id``'s: MongoDB does; FerretDB
    1.x (``buildInfo`` names its version) pushes only ``_id`` equality down to its backend."""
    client = db.client
    if (known := _answers_from_indexes.get(id(client))) is None:
        info = await client.admin.command("buildInfo")
        known = _answers_from_indexes[id(client)] = "ferretdbVersion" not in info
    return known


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
