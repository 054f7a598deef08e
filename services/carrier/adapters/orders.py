"""The retailer's order system behind a small port: which packages an order went out in, and to whom."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from contracts.carrier import PackageRef
from services.kernel.outbound import RecordClient, RecordUnavailable


class ShippedOrder(BaseModel):
    """An order as the carrier service needs it: its packages, its size, its customer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str
    customer_id: str
    packages: tuple[PackageRef, ...]
    items_total: int


class OrderSystemUnavailable(Exception):
    """The order system could not say (down, slow, answering 5xx or nonsense): do not guess."""

    def __init__(self, url: str, reason: str, attempts: int) -> None:
        super().__init__(f"order system at {url} unavailable: {reason}")
        self.url, self.reason, self.attempts = url, reason, attempts


@runtime_checkable
class OrderBook(Protocol):
    """Looks up an order's packages: None when there is no such order, ``OrderSystemUnavailable``
    when the system cannot answer, so that "no such order" is never confused with "could not ask"."""

    async def order(self, order_id: str) -> ShippedOrder | None: ...


def shipped_order(record: Mapping[str, Any]) -> ShippedOrder:
    """An order record as the order system returns it (see infra/simulators/orders.py)."""
    quantities = {item["sku"]: int(item.get("quantity", 1)) for item in record["items"]}
    packages = tuple(
        PackageRef(
            carrier=p["carrier"],
            tracking_number=p["tracking_number"],
            items=list(p["items"]),
            item_count=max(1, sum(quantities.get(sku, 1) for sku in p["items"])),
        )
        for p in record["packages"]
    )
    return ShippedOrder(
        order_id=record["order_id"],
        customer_id=record["customer"]["customer_id"],
        packages=packages,
        items_total=sum(quantities.values()),
    )


class HttpOrderBook:
    """OrderBook over HTTP: ``GET {base_url}/orders/{id}``; 404 is "no such order".

    Timeouts, refused connections and 5xx answers are retried ``retries`` times with a short
    jittered backoff, then raise OrderSystemUnavailable.
    """

    def __init__(self, base_url: str, timeout_s: float = 2.0, retries: int = 2, backoff_s: float = 0.1) -> None:
        self._records = RecordClient(base_url, timeout_s, retries, backoff_s)

    async def order(self, order_id: str) -> ShippedOrder | None:
        try:
            record = await self._records.get("orders", order_id)
        except RecordUnavailable as exc:
            raise OrderSystemUnavailable(exc.url, exc.reason, exc.attempts) from exc
        try:
            return None if record is None else shipped_order(record)
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise OrderSystemUnavailable(
                self._records.url("orders", order_id), f"unreadable answer ({type(exc).__name__})", 1
            ) from exc

    async def aclose(self) -> None:
        await self._records.aclose()
