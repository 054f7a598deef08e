"""The seller-account system, asked one thing: is this account locked (so "log in" cannot help)?"""

from __future__ import annotations

import logging

from services.kernel.outbound import RecordClient, RecordUnavailable

log = logging.getLogger(__name__)


class AccountDirectory:
    """``GET {base}/sellers/{id}`` of the retailer's seller-account system (or its simulator), read
    as every record is (kernel/outbound.py): a cut connection or a 5xx is tried again twice."""

    def __init__(self, base_url: str, timeout_s: float = 2.0) -> None:
        self._records = RecordClient(base_url, timeout_s)

    async def is_locked(self, recipient: str) -> bool | None:
        """True or False for an account the system knows; None when it does not know the id or
        cannot answer (the loop guard then judges without the fact: its cap still holds)."""
        try:
            seller = await self._records.get("sellers", recipient)
        except RecordUnavailable as exc:
            log.warning("seller-account system unavailable", extra={"fields": {"error": str(exc)}})
            return None
        return seller.get("status") == "locked" if isinstance(seller, dict) else None

    async def aclose(self) -> None:
        await self._records.aclose()
