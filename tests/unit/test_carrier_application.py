"""The carrier service's use cases on the in-memory event log, with fakes of the order system and carriers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import registry
from contracts.carrier import (
    Carrier,
    CheckTrigger,
    ExceptionReason,
    FailureCode,
    PackageRef,
    ShipmentExceptionDetected,
    ShipmentStatus,
)
from contracts.intake import Category, Channel, Complainant, ComplaintFiled
from services.carrier.adapters.orders import OrderSystemUnavailable, ShippedOrder
from services.carrier.application import Shipments
from services.carrier.domain import Tracked, TrackingReport, watch_stream
from services.kernel.eventstore import Cause
from services.kernel.memory_store import InMemoryEventStore

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
UPS = PackageRef(carrier="ups", tracking_number="1Z999AA10123456784", items=["SKU-1"])
FEDEX = PackageRef(carrier="fedex", tracking_number="123456789012", items=["SKU-2"])
ORDER = ShippedOrder(order_id="114-5523190-0012345", customer_id="cus-1", packages=(UPS, FEDEX), items_total=2)


class FakeOrderBook:
    """OrderBook from a dict; ``down`` makes it answer as an order system that cannot."""

    def __init__(self, *orders: ShippedOrder, down: bool = False) -> None:
        self.orders, self.down = {o.order_id: o for o in orders}, down

    async def order(self, order_id: str) -> ShippedOrder | None:
        if self.down:
            raise OrderSystemUnavailable("http://orders", "503 Service Unavailable", 3)
        return self.orders.get(order_id)


class FakeCarriers:
    """The carriers' answers by tracking number; remembers which packages were asked about."""

    def __init__(self, statuses: dict[str, ShipmentStatus]) -> None:
        self.statuses, self.asked = statuses, []

    async def __call__(self, package: PackageRef) -> Tracked:
        self.asked.append(package.tracking_number)
        return Tracked(
            package=package, carrier=Carrier(package.carrier), report=report(self.statuses[package.tracking_number])
        )


def report(status: ShipmentStatus) -> TrackingReport:
    return TrackingReport(
        status=status,
        carrier_status=status.value,
        last_event_at=T0,
        reason=ExceptionReason.ADDRESS if status is ShipmentStatus.EXCEPTION else None,
    )


def filed(order_id: str | None = ORDER.order_id) -> ComplaintFiled:
    return ComplaintFiled(
        complaint_id="c-1",
        category=Category.PACKAGE_NOT_RECEIVED,
        description="Never came.",
        channel=Channel.WEB,
        complainant=Complainant(email="ana@example.com"),
        order_id=order_id,
        filed_at=T0,
    )


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore("/services/carrier", registry)


async def test_a_complaint_about_an_order_watches_each_of_its_packages_with_what_its_carrier_said(store):
    carriers = FakeCarriers(
        {UPS.tracking_number: ShipmentStatus.DELIVERED, FEDEX.tracking_number: ShipmentStatus.IN_TRANSIT}
    )
    shipments = Shipments(store, FakeOrderBook(ORDER), carriers)

    await shipments.complaint_filed(filed(), Cause.of_request("filed-c-1", "complaint_filed"))

    watch = await shipments.watch("c-1")
    assert watch.watching and sorted(carriers.asked) == sorted([UPS.tracking_number, FEDEX.tracking_number])
    assert {n: p.status() for n, p in watch.packages.items()} == {
        UPS.tracking_number: ShipmentStatus.DELIVERED,
        FEDEX.tracking_number: ShipmentStatus.IN_TRANSIT,
    }


async def test_a_recheck_asks_again_only_about_packages_still_on_their_way(store):
    carriers = FakeCarriers(
        {UPS.tracking_number: ShipmentStatus.DELIVERED, FEDEX.tracking_number: ShipmentStatus.IN_TRANSIT}
    )
    shipments = Shipments(store, FakeOrderBook(ORDER), carriers)
    await shipments.complaint_filed(filed(), Cause.of_request("filed-c-1", "complaint_filed"))
    carriers.asked.clear()

    await shipments.recheck("c-1", CheckTrigger.RECHECK, Cause.of_request("tick-1", "recheck"))

    assert carriers.asked == [FEDEX.tracking_number]


async def test_the_same_complaint_delivered_twice_records_its_check_once(store):
    carriers = FakeCarriers(
        {UPS.tracking_number: ShipmentStatus.IN_TRANSIT, FEDEX.tracking_number: ShipmentStatus.IN_TRANSIT}
    )
    shipments = Shipments(store, FakeOrderBook(ORDER), carriers)
    cause = Cause.of_request("filed-c-1", "complaint_filed")

    await shipments.complaint_filed(filed(), cause)
    await shipments.complaint_filed(filed(), cause)

    assert [c.version for c in await store.read_stream(watch_stream("c-1"))] == [1, 2]


async def test_an_order_system_that_cannot_answer_is_recorded_on_the_watch_not_guessed_at(store):
    carriers = FakeCarriers({})
    shipments = Shipments(store, FakeOrderBook(down=True), carriers)

    await shipments.complaint_filed(filed(), Cause.of_request("filed-c-1", "complaint_filed"))

    watch = await shipments.watch("c-1")
    assert watch.order_failure is FailureCode.ORDER_SYSTEM_UNAVAILABLE and carriers.asked == []


async def test_a_carrier_pushing_the_same_exception_twice_alerts_the_order_once(store):
    shipments = Shipments(store, FakeOrderBook(ORDER), FakeCarriers({}))
    stuck = report(ShipmentStatus.EXCEPTION)

    first = await shipments.alert(
        ORDER.order_id, Carrier.UPS, UPS.tracking_number, stuck, Cause.of_request("push-1", "alert")
    )
    again = await shipments.alert(
        ORDER.order_id, Carrier.UPS, UPS.tracking_number, stuck, Cause.of_request("push-2", "alert")
    )

    assert [type(e) for e in first] == [ShipmentExceptionDetected] and again == []
    assert first[0].customer_id == "cus-1"
