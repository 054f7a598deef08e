"""Routing's use cases on the in-memory event log, with a fake order system: load, decide, append, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import registry
from contracts.intake import Assurance, CallbackRequested, Category, Channel, Complainant, ComplaintFiled
from contracts.routing import (
    AgentAssigned,
    Availability,
    ItemQuantity,
    Money,
    ResolutionAction,
    ResolutionActionRequested,
)
from services.kernel.commands import Snapshots
from services.kernel.eventstore import Cause
from services.kernel.memory_store import InMemoryEventStore, InMemorySnapshotShelf
from services.routing.adapters.orders import FakeOrderPrices
from services.routing.application import Routing
from services.routing.domain import (
    ROSTER_STREAM,
    ChangeAvailability,
    InvalidField,
    NeedsSupervisor,
    NotFound,
    OrderFacts,
    OrderLine,
    RegisterAgent,
    RequestResolutionAction,
    Resolve,
    case_stream,
)
from services.routing.rules import load_rules

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
ORDER = OrderFacts(
    order_id="ord-114-5523190",
    currency="GBP",
    lines={"SKU-88213-BLU": OrderLine(quantity=2, unit_price=Decimal("29.99"), shipping_fee=Decimal("7.98"))},
)


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore("/services/routing", registry)


@pytest.fixture
def routing(store) -> Routing:
    return Routing(
        store,
        load_rules(),
        FakeOrderPrices({ORDER.order_id: ORDER}),
        clock=lambda: T0,
        snapshots=Snapshots(InMemorySnapshotShelf(), every=3),
    )


def filed(complaint_id: str, category: Category = Category.DELIVERY_DRIVER_CONDUCT) -> ComplaintFiled:
    return ComplaintFiled(
        complaint_id=complaint_id,
        category=category,
        description="The driver threw it.",
        channel=Channel.WEB,
        complainant=Complainant(email="ana@example.com"),
        order_id=ORDER.order_id,
        filed_at=T0 - timedelta(minutes=1),
        assurance=Assurance.AUTHENTICATED,
    )


async def an_available_agent(routing: Routing, agent_id: str = "agt-cy", capacity: int = 1) -> None:
    await routing.register_agent(
        RegisterAgent(
            agent_id=agent_id,
            name="Cy",
            skills=(Category.DELIVERY_DRIVER_CONDUCT,),
            languages=("en",),
            regions=("uk-south",),
            capacity=capacity,
        ),
        Cause.of_request(f"register-{agent_id}", "register_agent"),
    )
    await routing.change_availability(
        ChangeAvailability(agent_id=agent_id, availability=Availability.AVAILABLE),
        Cause.of_request(f"online-{agent_id}", "change_availability"),
    )


def action(
    amount: str,
    kind: ResolutionAction = ResolutionAction.CANCEL_ITEMS,
    items: tuple[ItemQuantity, ...] = (ItemQuantity(sku="SKU-88213-BLU", quantity=2),),
) -> RequestResolutionAction:
    return RequestResolutionAction(
        action_id=f"act-{amount}",
        action=kind,
        order_id=ORDER.order_id,
        items=items,
        amount=Money(value=amount, currency="GBP"),
    )


async def test_a_filed_complaint_opens_a_case_that_the_available_agent_with_the_skill_takes(routing, store):
    await an_available_agent(routing)

    await routing.open_case(filed("c-1"), Cause.of_request("filed-c-1", "open_case"))

    assert (await routing.case("c-1")).status == "open"
    assert "c-1" in (await routing.roster()).agents["agt-cy"].cases
    assert any(isinstance(e, AgentAssigned) for e in (await store.load(ROSTER_STREAM))[0])


async def test_the_same_filed_event_delivered_twice_opens_one_case_and_assigns_it_once(routing, store):
    await an_available_agent(routing, capacity=5)
    cause = Cause.of_request("filed-c-1", "open_case")

    await routing.open_case(filed("c-1"), cause)
    versions = [(await store.load(s))[1] for s in (case_stream("c-1"), ROSTER_STREAM)]
    await routing.open_case(filed("c-1"), cause)

    assert [(await store.load(s))[1] for s in (case_stream("c-1"), ROSTER_STREAM)] == versions
    assert list((await routing.roster()).agents["agt-cy"].cases) == ["c-1"]


async def test_resolving_a_case_frees_its_agent_who_takes_the_case_waiting_in_the_queue(routing):
    await an_available_agent(routing)
    await routing.open_case(filed("c-1"), Cause.of_request("filed-c-1", "open_case"))
    await routing.open_case(filed("c-2"), Cause.of_request("filed-c-2", "open_case"))
    assert [w.complaint_id for w in (await routing.roster()).queue] == ["c-2"]

    await routing.resolve(
        "c-1", Resolve(agent_id="agt-cy", recap="Spoke to the depot."), Cause.of_request("resolve-c-1", "resolve")
    )

    roster = await routing.roster()
    assert list(roster.agents["agt-cy"].cases) == ["c-2"] and roster.queue == ()


async def test_a_resolution_action_is_checked_against_the_order_as_the_order_system_has_it(routing, store):
    await routing.open_case(filed("c-1"), Cause.of_request("filed-c-1", "open_case"))

    with pytest.raises(InvalidField) as refused:  # 2 x 29.99 + 7.98 = 67.96
        await routing.request_action("c-1", action("67.97"), False, Cause.of_request("too-much", "request_action"))
    assert refused.value.field == "amount.value"
    await routing.request_action("c-1", action("67.96"), False, Cause.of_request("fits", "request_action"))

    events, _ = await store.load(case_stream("c-1"))
    assert [e.amount for e in events if isinstance(e, ResolutionActionRequested)] == [
        Money(value="67.96", currency="GBP")
    ]


async def test_goodwill_above_the_agent_s_limit_needs_a_supervisor_who_may_give_it(routing):
    await routing.open_case(filed("c-1"), Cause.of_request("filed-c-1", "open_case"))
    credit = action("25.01", ResolutionAction.GOODWILL_CREDIT, items=())

    with pytest.raises(NeedsSupervisor):
        await routing.request_action("c-1", credit, False, Cause.of_request("by-agent", "request_action"))
    case = await routing.request_action("c-1", credit, True, Cause.of_request("by-supervisor", "request_action"))
    assert case.status == "open"


async def test_a_callback_on_a_case_routing_never_opened_is_refused_as_not_found(routing):
    with pytest.raises(NotFound):
        await routing.assign_callback(
            CallbackRequested(
                complaint_id="c-unknown",
                callback_id="cb-1",
                phone="+447700900123",
                preferred_language="en",
                requested_at=T0,
            ),
            Cause.of_request("cb-1", "assign_callback"),
        )


async def test_a_restarted_routing_reads_the_roster_from_its_snapshot_and_sees_the_same_agents(routing, store):
    for n in range(4):
        await an_available_agent(routing, f"agt-{n}")
    assert (await routing.snapshots.shelf.get(ROSTER_STREAM))["version"] == 6  # 8 roster commits, one every 3
    restarted = Routing(
        store, routing.rules, routing.orders, clock=lambda: T0, snapshots=Snapshots(routing.snapshots.shelf, every=3)
    )

    assert await restarted.roster() == await routing.roster()
    assert sorted((await restarted.roster()).agents) == ["agt-0", "agt-1", "agt-2", "agt-3"]
