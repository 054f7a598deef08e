"""Signed tokens (JWT, HS256): customers' case links and bearer tokens, agents' bearer tokens.

The local stack signs with a development key; production sets ``SIGNING_KEY`` from a secret.
``SIGNING_KEY`` is a key ring: ``<kid>:<secret>[,<kid>:<secret>…]``. The first key signs and its
id goes in each token's ``kid`` header; every listed key verifies the tokens that name it. Keys
rotate without logging anyone out (docs/deploying.md, "Rotating the signing key"; ADR 0021).
A bare secret (no ``kid:``) is a ring of one key, its id derived from it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt


class InvalidToken(Exception):
    """Missing, malformed, expired or wrongly signed."""


KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class KeyRing:
    """The signing key (the first) and every key that still verifies, by id."""

    signing_kid: str
    keys: dict[str, str]

    @property
    def signing_key(self) -> str:
        return self.keys[self.signing_kid]


@lru_cache(maxsize=16)
def key_ring(text: str) -> KeyRing:
    """Parse ``SIGNING_KEY`` (``kid:secret,kid:secret`` or one bare secret); ``ValueError`` names the rule."""
    keys: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        kid, colon, secret = entry.partition(":")
        if not colon or not KEY_ID.fullmatch(kid):  # a bare secret: one key, an id derived from it
            kid, secret = f"k{hashlib.sha256(entry.encode()).hexdigest()[:8]}", entry
            if len(text.split(",")) > 1:
                raise ValueError("with several keys, each must be <kid>:<secret> (kid: letters, digits, . _ -)")
        if not secret:
            raise ValueError(f"key {kid!r} has no secret")
        if kid in keys:
            raise ValueError(f"key id {kid!r} is listed twice")
        keys[kid] = secret
    return KeyRing(next(iter(keys)), keys)


def sign(claims: dict[str, Any], key: str, ttl: timedelta) -> str:
    """A token signed with the ring's first key, whose id it carries in its ``kid`` header."""
    ring, now = key_ring(key), datetime.now(UTC)
    return jwt.encode(
        {**claims, "iat": now, "exp": now + ttl}, ring.signing_key, algorithm="HS256", headers={"kid": ring.signing_kid}
    )


def verify(token: str | None, key: str, now: datetime | None = None) -> dict[str, Any]:
    """The claims of a token signed by a key of the ring, the one its ``kid`` names; a key that was
    removed from the ring no longer verifies anything. Tokens from before key ids (no ``kid``) are
    tried against every key. ``now`` (default: the wall clock) decides whether it has expired."""
    if not token:
        raise InvalidToken("no token")
    ring = key_ring(key)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if kid is not None and kid not in ring.keys:
        raise InvalidToken("signed with a key that is not (or no longer) accepted")
    error: jwt.PyJWTError | None = None
    for secret in [ring.keys[kid]] if kid is not None else ring.keys.values():
        try:
            claims = jwt.decode(
                token, secret, algorithms=["HS256"], options={"require": ["exp"], "verify_exp": now is None}
            )
        except jwt.InvalidSignatureError as exc:
            error = exc
            continue
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if now is not None and claims["exp"] <= now.timestamp():
            raise InvalidToken("Signature has expired")  # PyJWT's words for the wall clock's case
        return claims
    raise InvalidToken(str(error)) from None


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _reply_mac(complaint_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), complaint_id.lower().encode(), hashlib.sha256).hexdigest()[:16]


def reply_token(complaint_id: str, key: str) -> str:
    """The token of a case's reply address ``case+<token>@…`` (lower case: mail systems fold it),
    made with the ring's signing key (an address has no room for a key id)."""
    return f"{complaint_id.lower()}.{_reply_mac(complaint_id, key_ring(key).signing_key)}"


def complaint_of_reply_token(token: str, key: str) -> str | None:
    """The complaint a reply token names, or None if no key of the ring made it."""
    complaint_id, _, _ = token.lower().rpartition(".")
    return (
        complaint_id
        if complaint_id
        and any(
            hmac.compare_digest(f"{complaint_id}.{_reply_mac(complaint_id, secret)}", token.lower())
            for secret in key_ring(key).keys.values()
        )
        else None
    )
