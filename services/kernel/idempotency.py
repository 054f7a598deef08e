"""Idempotent POSTs: a retried request with the same ``Idempotency-Key`` gets the first answer.

The first response is stored under the key (scoped by route); a repeat with the same request gets
it back, a repeat with a different body is refused. The key also fixes the ids of what the
request appends (``Cause.of_request``), so even two copies racing each other append once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.kernel.eventstore import Cause, derived_id

#: The stored answers (created at start by ``Runtime.start``, as every kernel collection).
COLLECTION = "idempotency"


class IdempotencyKeyReused(ValueError):
    """The key was used before for a different request."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.responses = db[COLLECTION]

    async def replay(self, scope: str, key: str, request: str) -> StoredResponse | None:
        """The stored answer for this key, if any; raises if the key came with another request."""
        doc = await self.responses.find_one({"_id": f"{scope}:{key}"})
        if doc is None:
            return None
        if doc["request"] != request:
            raise IdempotencyKeyReused("already used with a different request (a new request needs a new key)")
        return StoredResponse(doc["status"], doc["body"])

    async def save(self, scope: str, key: str, request: str, status: int, body: Any) -> None:
        try:
            await self.responses.insert_one(
                {
                    "_id": f"{scope}:{key}",
                    "request": request,
                    "status": status,
                    "body": body,
                    "stored_at": datetime.now(UTC),
                }
            )
        except DuplicateKeyError:
            pass  # a concurrent copy stored the same answer (its appends were the same ones)


async def idempotent(
    store: IdempotencyStore,
    scope: str,
    key: str | None,
    payload: Any,
    run: Callable[[Cause], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """Answer a POST once per Idempotency-Key: replay the stored answer, or ``run`` and store it.

    ``run`` gets the request's ``Cause``, derived from the key, so what it appends is the same
    whichever copy of a retried request gets there first.
    """
    cause, request = Cause.of_request(derived_id(scope, key or str(uuid.uuid4())), scope), fingerprint(payload)
    # A key reused with another request raises IdempotencyKeyReused: every service answers it 422.
    if key and (stored := await store.replay(scope, key, request)):
        return answer(stored.status, stored.body, {"Idempotent-Replayed": "true"})
    status, body = await run(cause)
    if key:
        await store.save(scope, key, request, status, body)
    return answer(status, body)


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """A stored or fresh answer; a refusal is problem details (services.kernel.web.problem_body)."""
    return JSONResponse(
        body, status, headers=headers, media_type="application/problem+json" if status >= 400 else "application/json"
    )
