"""The seller-account system, asked one thing: is this account locked (so "log in" cannot help)?"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)


class AccountDirectory:
    """``GET {base}/sellers/{id}`` of the retailer's seller-account system (or its simulator)."""

    def __init__(self, base_url: str, timeout_s: float = 2.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def is_locked(self, recipient: str) -> bool | None:
        """True or False for an account the system knows; None when it does not know the id or
        cannot answer (the loop guard then judges without the fact: its cap still holds)."""
        try:
            answer = await self._client.get(f"/sellers/{quote(recipient, safe='')}")
        except httpx.HTTPError as exc:
            log.warning("seller-account system unreachable", extra={"fields": {"error": repr(exc)}})
            return None
        if answer.status_code != 200:
            return None
        try:
            return answer.json().get("status") == "locked"
        except ValueError:
            return None

    async def aclose(self) -> None:
        await self._client.aclose()
