"""A stand-in for the retailer's order system and seller-account system, seeded from orders.json.

``python -m infra.simulators.orders --port 8090`` serves it; `make up` and the integration tests
run it as a real process. ``PUT /faults`` makes the next answers slow or 5xx, so that clients'
timeouts and retries are tested over real HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Literal

import uvicorn
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

SEED = Path(__file__).with_name("orders.json")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Money(Record):
    amount: Decimal = Field(ge=0, decimal_places=2, examples=["4.99"])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["GBP"])


class Item(Record):
    sku: str = Field(examples=["SPORT-YOGA-MAT"])
    title: str = Field(examples=["Yoga mat, 6 mm"])
    quantity: int = Field(ge=1, examples=[1])
    unit_price: Money = Field(description="Price of one, as charged.")
    shipping_fee: Money = Field(description="Shipping fee charged for this line.")


class Package(Record):
    carrier: str = Field(examples=["ups"])
    tracking_number: str = Field(examples=["1Z999AA10123456784"])
    items: list[str] = Field(description="SKUs in this package.", examples=[["SPORT-YOGA-MAT"]])


class Customer(Record):
    customer_id: str = Field(examples=["cust-2002"])
    email: str = Field(examples=["sam.okafor@example.com"])
    phone: str | None = Field(None, examples=["+447700900123"])


class Order(Record):
    order_id: str = Field(examples=["114-5523190-0012345"])
    customer: Customer
    seller_id: str = Field(examples=["sel-00001"])
    items: list[Item]
    packages: list[Package]

    @model_validator(mode="after")
    def _packages_hold_items_of_this_order(self) -> Order:
        unknown = {sku for p in self.packages for sku in p.items} - {i.sku for i in self.items}
        if unknown:
            raise ValueError(f"order {self.order_id}: packages hold SKUs it does not have: {sorted(unknown)}")
        return self


class Seller(Record):
    seller_id: str = Field(examples=["sel-48213"])
    email: str = Field(examples=["maria.chen@willowandclay.example"])
    phone: str | None = Field(None, examples=["+447700900377"])
    status: Literal["active", "locked"]
    locked_reason: str | None = Field(None, examples=["suspected card fraud"])


class Seed(Record):
    about: str = ""
    orders: list[Order]
    sellers: list[Seller]


class Fault(Record):
    """What the next ``times`` order and seller requests suffer: a delay, then ``status`` if set."""

    times: int = Field(1, ge=0, description="How many requests are affected.")
    delay_s: float = Field(0.0, ge=0, le=30, description="Pause before answering.")
    status: int | None = Field(None, ge=500, le=599, description="Answer this 5xx instead of the record.")


class Faults:
    """The fault set by ``PUT /faults``, counted down by each order or seller request."""

    def __init__(self) -> None:
        self.fault, self.left = Fault(times=0), 0

    def set(self, fault: Fault) -> None:
        self.fault, self.left = fault, fault.times

    async def suffer(self) -> JSONResponse | None:
        """Wait out the delay of the current fault; its 5xx answer if it has one, else None."""
        if self.left <= 0:
            return None
        self.left -= 1
        await asyncio.sleep(self.fault.delay_s)
        status = self.fault.status
        return JSONResponse({"message": f"simulated fault: {status}"}, status) if status else None


NOT_FOUND = {404: {"description": "No such record", "content": {"application/json": {
    "example": {"message": "order not found"}}}}}


def create_app(seed: Path = SEED) -> FastAPI:
    data = Seed.model_validate_json(seed.read_text())
    orders = {o.order_id: o for o in data.orders}
    sellers = {s.seller_id: s for s in data.sellers}
    faults = Faults()

    app = FastAPI(title="Order and seller-account simulator", version="1",
                  description="Stands in for the retailer's order system and seller accounts. " + data.about)

    @app.get("/health", tags=["health"])
    async def health() -> dict:
        return {"status": "ok", "orders": len(orders), "sellers": len(sellers)}

    @app.get("/orders/{order_id}", response_model=Order, responses=NOT_FOUND, tags=["orders"])
    async def get_order(order_id: str, failed: JSONResponse | None = Depends(faults.suffer)):
        if failed:
            return failed
        if order_id not in orders:
            return JSONResponse({"message": "order not found"}, 404)
        return orders[order_id]

    @app.get("/sellers/{seller_id}", response_model=Seller, response_model_exclude_none=True,
             responses=NOT_FOUND, tags=["sellers"])
    async def get_seller(seller_id: str, failed: JSONResponse | None = Depends(faults.suffer)):
        if failed:
            return failed
        if seller_id not in sellers:
            return JSONResponse({"message": "seller not found"}, 404)
        return sellers[seller_id]

    @app.put("/faults", tags=["simulation"], summary="Make the next order/seller requests slow or fail.")
    async def set_fault(new: Fault) -> Fault:
        faults.set(new)
        return new

    @app.delete("/faults", tags=["simulation"], summary="Answer normally again.", status_code=204)
    async def clear_faults() -> None:
        faults.set(Fault(times=0))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", type=Path, default=SEED, help="JSON file of orders and sellers")
    args = parser.parse_args()
    uvicorn.run(create_app(args.seed), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
