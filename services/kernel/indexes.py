"""Indexes created once: a service that starts beside running ones does not ask for them again.

FerretDB 1.24 on SQLite takes its metadata registry's lock for every ``createIndexes``, even for
an index that exists, and under write load that lock can wait on a write that waits on it: every
command on the database then hangs until the clients time out (seen twice in `make bench`: the
second instance of each service starting during a burst, ADR 0032). Listing the indexes is a read.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection


async def ensure_index(collection: AsyncCollection[dict[str, Any]], keys: Any, *, name: str, **options: Any) -> None:
    """Create the index ``name`` on ``collection`` unless it has one of that name already."""
    cursor = await collection.list_indexes()
    if name in {index["name"] async for index in cursor}:
        return
    await collection.create_index(keys, name=name, **options)
