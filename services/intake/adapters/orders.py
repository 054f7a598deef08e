"""The retailer's order and seller-account systems behind a small port: whose contact details are on file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.kernel.outbound import RecordClient, RecordUnavailable


class ContactOnFile(BaseModel):
    """How the retailer reaches the person behind an order or a seller account (what a code is sent to)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str = Field(description="Email address on file.", examples=["sam.okafor@example.com"])
    phone: str | None = Field(None, description="Phone number on file (E.164), if any.", examples=["+447700900123"])
    customer_id: str | None = Field(
        None, description="The customer who placed the order; None for a seller account.", examples=["cust-2002"]
    )
    seller_id: str | None = Field(
        None, description="The seller of the order, or the seller account itself.", examples=["sel-48213"]
    )
    account_status: Literal["active", "locked"] = Field(
        description="Whether the account can be logged into; a locked one must be helped without a login.",
        examples=["locked"],
    )


class DirectoryUnavailable(Exception):
    """The order system could not say (down, slow, answering 5xx or nonsense): the caller should not guess."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"order system at {url} unavailable: {reason}")
        self.url, self.reason = url, reason


@runtime_checkable
class OrderDirectory(Protocol):
    """Looks up the contact details on file for an order or a seller account.

    Both methods return None when the system has no such record, and raise DirectoryUnavailable
    when it cannot answer, so that "not found" is never confused with "could not ask".
    """

    async def order_contact(self, order_id: str) -> ContactOnFile | None:
        """The customer who placed ``order_id`` (and the order's seller)."""
        ...

    async def seller_contact(self, seller_id: str) -> ContactOnFile | None:
        """The seller account ``seller_id``, with its status (locked accounts included)."""
        ...


def contact_of_order(order: Mapping[str, Any]) -> ContactOnFile:
    """An order record as the order system returns it, read into the customer's contact."""
    customer = order["customer"]
    # The order system holds no customer account status; a customer it serves orders to is active.
    return ContactOnFile(
        email=customer["email"],
        phone=customer.get("phone"),
        customer_id=customer["customer_id"],
        seller_id=order.get("seller_id"),
        account_status="active",
    )


def contact_of_seller(seller: Mapping[str, Any]) -> ContactOnFile:
    """A seller record as the seller-account system returns it, read into the seller's contact."""
    return ContactOnFile(
        email=seller["email"], phone=seller.get("phone"), seller_id=seller["seller_id"], account_status=seller["status"]
    )


class HttpOrderDirectory:
    """OrderDirectory over HTTP: ``GET {base_url}/orders/{id}`` and ``GET {base_url}/sellers/{id}``.

    A 404 is "no such record". Timeouts, refused connections and 5xx answers are retried
    ``retries`` times with a short jittered backoff, then raise DirectoryUnavailable.
    """

    def __init__(self, base_url: str, timeout_s: float = 2.0, retries: int = 2, backoff_s: float = 0.1) -> None:
        self._records = RecordClient(base_url, timeout_s, retries, backoff_s)

    async def order_contact(self, order_id: str) -> ContactOnFile | None:
        return await self._get("orders", order_id, contact_of_order)

    async def seller_contact(self, seller_id: str) -> ContactOnFile | None:
        return await self._get("sellers", seller_id, contact_of_seller)

    async def aclose(self) -> None:
        await self._records.aclose()

    async def __aenter__(self) -> HttpOrderDirectory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _get(self, collection: str, key: str, read) -> ContactOnFile | None:
        try:
            record = await self._records.get(collection, key)
        except RecordUnavailable as exc:
            raise DirectoryUnavailable(exc.url, exc.reason) from exc
        try:
            return None if record is None else read(record)
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise DirectoryUnavailable(
                self._records.url(collection, key), f"unreadable answer ({type(exc).__name__}: {exc})"
            ) from exc


class FakeOrderDirectory:
    """OrderDirectory from dicts of records shaped like the order system's answers (for unit tests).

    Set ``unavailable`` to make every lookup raise DirectoryUnavailable, as the real one does
    when the system is down.
    """

    def __init__(
        self,
        orders: Mapping[str, Mapping[str, Any]] | None = None,
        sellers: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.orders, self.sellers = dict(orders or {}), dict(sellers or {})
        self.unavailable = False

    async def order_contact(self, order_id: str) -> ContactOnFile | None:
        return self._get("orders", self.orders, order_id, contact_of_order)

    async def seller_contact(self, seller_id: str) -> ContactOnFile | None:
        return self._get("sellers", self.sellers, seller_id, contact_of_seller)

    def _get(self, collection: str, records: Mapping, key: str, read) -> ContactOnFile | None:
        if self.unavailable:
            raise DirectoryUnavailable(f"fake://{collection}/{key}", "made unavailable by the test")
        record = records.get(key)
        return None if record is None else read(record)
