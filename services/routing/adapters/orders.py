"""The retailer's order system behind a small port: an order's lines, prices and shipping fees, which
bound what an agent may refund, cancel or reship on a case."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from services.kernel.outbound import RecordClient, RecordUnavailable
from services.routing.domain import OrderFacts, OrderLine


class OrderPrices(Protocol):
    """Looks up an order: None when there is none; ``RecordUnavailable`` when the system cannot say."""

    async def order(self, order_id: str) -> OrderFacts | None: ...


def order_facts(record: Mapping[str, Any]) -> OrderFacts:
    """An order record as the order system returns it (see infra/simulators/orders.py)."""
    lines, currencies = {}, set()
    for item in record["items"]:
        price, fee = item.get("unit_price") or {"amount": "0", "currency": None}, item["shipping_fee"]
        currencies |= {fee["currency"], price["currency"]} - {None}
        lines[item["sku"]] = OrderLine(
            quantity=int(item["quantity"]), unit_price=Decimal(price["amount"]), shipping_fee=Decimal(fee["amount"])
        )
    if len(currencies) != 1:
        raise ValueError(f"order {record['order_id']}: one currency expected, got {sorted(currencies)}")
    return OrderFacts(order_id=record["order_id"], currency=currencies.pop(), lines=lines)


class HttpOrderPrices:
    """OrderPrices over HTTP (``GET {base_url}/orders/{id}``), retried as every record read is."""

    def __init__(self, base_url: str, timeout_s: float = 2.0, retries: int = 2) -> None:
        self._records = RecordClient(base_url, timeout_s, retries)

    async def order(self, order_id: str) -> OrderFacts | None:
        record = await self._records.get("orders", order_id)
        try:
            return None if record is None else order_facts(record)
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise RecordUnavailable(
                self._records.url("orders", order_id), f"unreadable order ({type(exc).__name__}: {exc})", 1
            ) from exc

    async def aclose(self) -> None:
        await self._records.aclose()


class FakeOrderPrices:
    """OrderPrices from a dict of order facts (unit tests)."""

    def __init__(self, orders: Mapping[str, OrderFacts] | None = None) -> None:
        self.orders = dict(orders or {})

    async def order(self, order_id: str) -> OrderFacts | None:
        return self.orders.get(order_id)
