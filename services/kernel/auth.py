"""Signed tokens (JWT, HS256): customers' case links and bearer tokens, agents' bearer tokens.

The local stack signs with a development key; production sets ``SIGNING_KEY`` from a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt


class InvalidToken(Exception):
    """Missing, malformed, expired or wrongly signed."""


def sign(claims: dict[str, Any], key: str, ttl: timedelta) -> str:
    now = datetime.now(UTC)
    return jwt.encode({**claims, "iat": now, "exp": now + ttl}, key, algorithm="HS256")


def verify(token: str | None, key: str) -> dict[str, Any]:
    if not token:
        raise InvalidToken("no token")
    try:
        return jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def reply_token(complaint_id: str, key: str) -> str:
    """The token of a case's reply address ``case+<token>@…`` (lower case: mail systems fold it)."""
    mac = hmac.new(key.encode(), complaint_id.lower().encode(), hashlib.sha256).hexdigest()[:16]
    return f"{complaint_id.lower()}.{mac}"


def complaint_of_reply_token(token: str, key: str) -> str | None:
    """The complaint a reply token names, or None if it was not signed with ``key``."""
    complaint_id, _, _ = token.lower().rpartition(".")
    return complaint_id if complaint_id and hmac.compare_digest(reply_token(complaint_id, key), token.lower()) else None
