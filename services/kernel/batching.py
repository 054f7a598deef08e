"""Group commit: the inserts that concurrent writers make on one collection, sent as one command.

FerretDB answers a command at about the same cost whatever number of documents it carries
(measured on SQLite: ``insert_one`` 1.97 ms, ``insert_many`` of 10 documents 1.84 ms, of 50
4.15 ms), and under load the store's commands are what a complaint waits for (issue 14). So the
event log's hot inserts (pending entries, commits, inbox records) go through an ``InsertBatcher``:
a caller hands over its document and waits for its own outcome, as with ``insert_one``; while one
``insert_many`` is on its way, the documents that arrive meanwhile wait and go together in the
next. Alone, a writer waits for nobody (its document leaves at once); under load, a batch is as
large as what arrived during the previous one.

What each caller sees is what ``insert_one`` would have given it: nothing, ``DuplicateKeyError``
for its own document (the batch is unordered: another's duplicate does not stop it), or the
error of the whole command (the store away, a timeout). A caller's own deadline
(``pymongo.timeout``, e.g. an HTTP request's) bounds its wait, not the batch: a document may
still be written after its caller gave up, as with ``insert_one`` timed out on its way.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from pymongo import _csot
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, NetworkTimeout, OperationFailure

#: Documents per command at most (PyMongo splits a command larger than the server's message
#: limit by itself): bounds how long one batch holds the store.
MAX_BATCH = 256

#: Error codes of a duplicate key (the second one is an old server's).
DUPLICATE_KEY = frozenset({11000, 11001})


class InsertBatcher:
    """Concurrent ``insert_one`` calls on one collection, written by one ``insert_many`` per round."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], max_batch: int = MAX_BATCH) -> None:
        self.collection, self.max_batch = collection, max_batch
        self._queue: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flight: list[tuple[dict[str, Any], asyncio.Future[None]]] = []  # the batch on its way
        self._sending: asyncio.Task[None] | None = None

    async def insert_one(self, document: dict[str, Any]) -> None:
        """Insert ``document`` (with its ``_id``); raises as ``insert_one`` would for it."""
        outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        outcome.add_done_callback(_retrieved)  # a caller that gave up leaves no "never retrieved" noise
        self._queue.append((document, outcome))
        if self._sending is None or self._sending.done():
            # In a context of its own: a caller's deadline (a context variable) must not cut
            # the other callers' documents short.
            self._sending = asyncio.create_task(
                self._send(), name=f"insert batches {self.collection.name}", context=contextvars.Context()
            )
            self._sending.add_done_callback(self._sent)
        remaining = _csot.remaining()
        if remaining is None:
            return await asyncio.shield(outcome)
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), max(remaining, 0))
        except TimeoutError:
            raise NetworkTimeout(f"insert into {self.collection.name} timed out waiting for the store") from None

    async def _send(self) -> None:
        while self._queue:
            self._flight, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            await self._insert(self._flight)
        self._flight = []

    def _sent(self, task: asyncio.Task[None]) -> None:
        """Whatever ended the sending (cancelled at stop, even before it began): nobody waits for ever."""
        error: BaseException | None = asyncio.CancelledError() if task.cancelled() else task.exception()
        if error is None:
            return
        for _, outcome in [*self._flight, *self._queue]:
            if not outcome.done():
                outcome.set_exception(error)
        self._flight, self._queue = [], []

    async def _insert(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        errors: dict[int, dict[str, Any]] = {}
        try:
            await self.collection.insert_many([document for document, _ in batch], ordered=False)
        except BulkWriteError as exc:
            errors = {error["index"]: error for error in exc.details.get("writeErrors", [])}
            if exc.details.get("writeConcernErrors"):  # written, but not as durably as asked
                errors = {i: exc.details["writeConcernErrors"][0] for i in range(len(batch))} | errors
        except Exception as exc:  # the whole command failed: each caller sees it
            for _, outcome in batch:
                if not outcome.done():
                    outcome.set_exception(exc)
            return
        for index, (_, outcome) in enumerate(batch):
            if outcome.done():
                continue
            if (error := errors.get(index)) is None:
                outcome.set_result(None)
            elif error.get("code") in DUPLICATE_KEY:
                outcome.set_exception(DuplicateKeyError(error.get("errmsg", "duplicate key"), error["code"], error))
            else:
                outcome.set_exception(OperationFailure(error.get("errmsg", "write failed"), error.get("code"), error))


def _retrieved(outcome: asyncio.Future[None]) -> None:
    if not outcome.cancelled():
        outcome.exception()
