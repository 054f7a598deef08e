"""Idempotent POSTs: a retried request with the same ``Idempotency-Key`` gets the first answer.

The first response is stored under the key (scoped by route); a repeat with the same request gets
it back, a repeat with a different body is refused. The key also fixes the ids of what the
request appends (``Cause.of_request``), so even two copies racing each other append once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class IdempotencyKeyReused(ValueError):
    """The key was used before for a different request."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.responses = db["idempotency"]

    async def replay(self, scope: str, key: str, request: str) -> StoredResponse | None:
        """The stored answer for this key, if any; raises if the key came with another request."""
        doc = await self.responses.find_one({"_id": f"{scope}:{key}"})
        if doc is None:
            return None
        if doc["request"] != request:
            raise IdempotencyKeyReused("Idempotency-Key was already used with a different request")
        return StoredResponse(doc["status"], doc["body"])

    async def save(self, scope: str, key: str, request: str, status: int, body: Any) -> None:
        try:
            await self.responses.insert_one({"_id": f"{scope}:{key}", "request": request, "status": status,
                                             "body": body, "stored_at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass  # a concurrent copy stored the same answer (its appends were the same ones)
