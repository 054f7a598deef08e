"""Routing's decisions, as stories: given events, when a command, then events (or an error)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.envelope import Event
from contracts.intake import Assurance, Category
from contracts.routing import (
    AgentAssigned,
    AgentAvailabilityChanged,
    AgentRegistered,
    AgentReleased,
    Availability,
    CallbackDispatched,
    CallbackQueued,
    CallConnected,
    CaseClosed,
    CaseNoteAdded,
    CaseOpened,
    CaseReopened,
    ComplaintResolved,
    Escalated,
    EscalationReason,
    HandoffBrief,
    ItemQuantity,
    Money,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    QueuedWorkRemoved,
    ResolutionAction,
    ResolutionActionRequested,
    RoutedToTeam,
    TransferredToPartner,
    WorkQueued,
)
from services.kernel.domain import Aggregate
from services.routing.domain import (
    CASE,
    ROSTER,
    AcknowledgeTransfer,
    ActionPolicy,
    AddNote,
    AssignCase,
    AssignForCallback,
    BriefDraft,
    CallbackOnCase,
    CancelQueuedCallback,
    ChangeAvailability,
    Close,
    ConnectCall,
    Escalate,
    FinishCase,
    FireDueTimers,
    IllegalState,
    InvalidField,
    MissingField,
    Needs,
    NeedsSupervisor,
    NotFound,
    OpenCase,
    OrderFacts,
    OrderLine,
    RecordContact,
    RecordPartnerOutcome,
    ReleaseAgent,
    Reopen,
    RequestResolutionAction,
    Resolve,
    RouteBack,
    Team,
    TransferToPartner,
    callbacks_on,
    due_timers,
    pick_agent,
    repeated_contacts,
)
from services.routing.rules import PartnerTeam as PartnerTeamTarget
from services.routing.rules import Supervisor

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
CID, CB, PHONE = "c-2026-000042", "cb-2026-000107", "+447700900123"
DRIVER = Needs(skill=Category.DELIVERY_DRIVER_CONDUCT, language="en-GB", region="uk-south")
LOGISTICS = Team(
    team_id="team-logistics-uk-south",
    categories=frozenset({Category.DELIVERY_DRIVER_CONDUCT, Category.LATE_DELIVERY}),
    response_sla_minutes=240,
)
BRIEF = BriefDraft(
    customer_asks="Wants the driver's conduct looked into.",
    tried="Confirmed the route and the time with him.",
    evidence=("1Z999AA10123456784",),
    promised="He will hear the outcome.",
    promised_by=T0 + timedelta(days=2),
)


def run(aggregate: Aggregate, given: list[Event], *commands, at: datetime = T0) -> list[Event]:
    """Decide each command in turn on the state so far; all the events decided, in order."""
    history, decided = list(given), []
    for command in commands:
        new = aggregate.decide(aggregate.fold(history), command, at)
        history += new
        decided += new
    return decided


def agent(
    agent_id: str, skills=(Category.DELIVERY_DRIVER_CONDUCT,), languages=("en",), regions=("uk-south",), capacity=1
) -> AgentRegistered:
    return AgentRegistered(
        agent_id=agent_id,
        name=agent_id,
        skills=list(skills),
        languages=list(languages),
        regions=list(regions),
        capacity=capacity,
        registered_at=T0 - timedelta(hours=1),
    )


def _available(agent_id: str, since: datetime) -> Event:
    return AgentAvailabilityChanged(agent_id=agent_id, availability=Availability.AVAILABLE, changed_at=since)


def callback(callback_id: str = CB, complaint_id: str = CID, needs: Needs = DRIVER):
    return AssignForCallback(complaint_id=complaint_id, callback_id=callback_id, phone=PHONE, needs=needs)


THREE_AGENTS = [
    agent("agt-ana"),
    _available("agt-ana", T0 - timedelta(minutes=5)),
    agent("agt-bo", skills=(Category.REFUND,)),
    _available("agt-bo", T0 - timedelta(minutes=30)),
    agent("agt-cy"),
    _available("agt-cy", T0 - timedelta(minutes=12)),
]


# --- callbacks -----------------------------------------------------------------------------------


def test_a_callback_goes_at_once_to_the_longest_idle_agent_with_the_skill():
    events = run(ROSTER, THREE_AGENTS, callback())

    assert [type(e) for e in events] == [AgentAssigned, CallbackDispatched]
    assert events[1] == CallbackDispatched(
        complaint_id=CID, callback_id=CB, agent_id="agt-cy", phone=PHONE, dispatched_at=T0
    )


def test_an_agent_who_does_not_speak_the_language_or_serve_the_region_is_not_picked():
    roster = ROSTER.fold(
        [
            agent("agt-fr", languages=("fr",)),
            _available("agt-fr", T0),
            agent("agt-north", regions=("uk-north",)),
            _available("agt-north", T0),
        ]
    )

    assert pick_agent(roster, DRIVER, T0) is None


def test_with_no_fitting_agent_the_callback_is_queued_with_position_and_estimate():
    busy = THREE_AGENTS + run(ROSTER, THREE_AGENTS, callback("cb-1", "c-1"), callback("cb-2", "c-2"))

    events = run(ROSTER, busy, callback())

    # No handling times yet: 5 minutes assumed, first in line, two agents with the skill on shift.
    assert events[-1] == CallbackQueued(
        complaint_id=CID, callback_id=CB, position=1, estimated_wait_s=150, queued_at=T0
    )


def test_the_estimate_comes_from_recent_handling_times():
    given = [*THREE_AGENTS, *run(ROSTER, THREE_AGENTS, callback("cb-1", "c-1"))]
    given += run(ROSTER, given, ReleaseAgent(complaint_id="c-1", agent_id="agt-cy"), at=T0 + timedelta(minutes=8))
    given += run(ROSTER, given, callback("cb-2", "c-2"), callback("cb-3", "c-3"))

    [_, queued] = run(ROSTER, given, callback())

    # 8 minutes on average, first in line, two agents with the skill on shift.
    assert queued.estimated_wait_s == 8 * 60 // 2


def test_a_queued_callback_is_dispatched_the_moment_a_fitting_agent_becomes_free():
    given = [*THREE_AGENTS, *run(ROSTER, THREE_AGENTS, callback("cb-1", "c-1"), callback("cb-2", "c-2"), callback())]

    events = run(ROSTER, given, ReleaseAgent(complaint_id="c-1", agent_id="agt-cy"), at=T0 + timedelta(minutes=3))

    assert [type(e) for e in events] == [AgentReleased, AgentAssigned, CallbackDispatched]
    assert events[2].callback_id == CB and events[2].agent_id == "agt-cy"


def test_an_agent_coming_online_takes_the_oldest_queued_callback_first():
    given = run(ROSTER, [agent("agt-ana")], callback("cb-1", "c-1"), callback("cb-2", "c-2"))

    events = run(
        ROSTER, [agent("agt-ana"), *given], ChangeAvailability(agent_id="agt-ana", availability=Availability.AVAILABLE)
    )

    assert [e.callback_id for e in events if isinstance(e, CallbackDispatched)] == ["cb-1"]


def test_a_cancelled_callback_leaves_the_queue_and_is_never_dispatched():
    given = [agent("agt-ana"), *run(ROSTER, [agent("agt-ana")], callback())]
    given += run(ROSTER, given, CancelQueuedCallback(complaint_id=CID, callback_id=CB))

    events = run(ROSTER, given, ChangeAvailability(agent_id="agt-ana", availability=Availability.AVAILABLE))

    assert isinstance(given[-1], QueuedWorkRemoved)
    assert not any(isinstance(e, CallbackDispatched) for e in events)


def test_the_same_callback_requested_twice_is_handled_once():
    given = [*THREE_AGENTS, *run(ROSTER, THREE_AGENTS, callback())]

    assert run(ROSTER, given, callback()) == []


def test_changing_the_availability_of_an_unknown_agent_is_refused_naming_the_agent():
    with pytest.raises(NotFound, match="agt-nobody"):
        run(ROSTER, [], ChangeAvailability(agent_id="agt-nobody", availability=Availability.AVAILABLE))


def test_a_reopened_case_goes_back_to_its_agent_if_available_else_to_the_queue():
    given = [*THREE_AGENTS, *run(ROSTER, THREE_AGENTS, callback())]
    given += run(ROSTER, given, ReleaseAgent(complaint_id=CID, agent_id="agt-cy"))

    [back] = run(ROSTER, given, RouteBack(complaint_id=CID, needs=DRIVER))
    offline = given + [
        agent("agt-ana"),
        *run(
            ROSTER,
            given,
            *(ChangeAvailability(agent_id=a, availability=Availability.OFFLINE) for a in ("agt-ana", "agt-cy")),
        ),
    ]
    [queued] = run(ROSTER, offline, RouteBack(complaint_id=CID, needs=DRIVER))

    assert back.agent_id == "agt-cy" and "back to the agent" in back.reason
    assert isinstance(queued, WorkQueued) and queued.callback_id is None


def test_one_agent_never_gets_callbacks_beyond_capacity_over_many_random_sequences():
    rng = random.Random(20260314)
    agents = [agent(f"agt-{i}", capacity=1 + i % 3) for i in range(5)]
    for _ in range(200):
        history: list[Event] = list(agents)
        for step in range(40):
            roll, aid = rng.random(), f"agt-{rng.randrange(5)}"
            held = ROSTER.fold(history).agents[aid].cases
            if roll < 0.45:
                command = callback(f"cb-{step}", f"c-{step}")
            elif roll < 0.65:
                command = ChangeAvailability(agent_id=aid, availability=rng.choice(list(Availability)))
            elif roll < 0.9 and held:
                command = ReleaseAgent(complaint_id=rng.choice(sorted(held)), agent_id=aid)
            else:
                command = CancelQueuedCallback(complaint_id=f"c-{step - 1}", callback_id=f"cb-{step - 1}")
            history += run(ROSTER, history, command, at=T0 + timedelta(seconds=step))
            assert_within_capacity(history)
        dispatched = [e.callback_id for e in history if isinstance(e, CallbackDispatched)]
        assert len(dispatched) == len(set(dispatched)), "a callback was dispatched twice"


def assert_within_capacity(history: list[Event]) -> None:
    # Counted from the events, not from the state under test.
    capacity = {e.agent_id: e.capacity for e in history if isinstance(e, AgentRegistered)}
    load = dict.fromkeys(capacity, 0)
    for e in history:
        if isinstance(e, AgentAssigned):
            load[e.agent_id] += 1
        elif isinstance(e, AgentReleased):
            load[e.agent_id] -= 1
        assert all(load[a] <= capacity[a] for a in load), load


# --- a case: transfer, outcome, resolution -----------------------------------------------------------

OPENED = CaseOpened(
    complaint_id=CID,
    category=Category.DELIVERY_DRIVER_CONDUCT,
    region="uk-south",
    assurance=Assurance.AUTHENTICATED,
    opened_at=T0,
)
TRANSFER = TransferToPartner(team=LOGISTICS, by_agent_id="agt-cy", brief=BRIEF)


def test_a_warm_transfer_hands_the_partner_the_brief_and_starts_its_sla_clock():
    [event] = run(CASE, [OPENED], TRANSFER, at=T0 + timedelta(minutes=2))

    assert event == TransferredToPartner(
        complaint_id=CID,
        team_id=LOGISTICS.team_id,
        by_agent_id="agt-cy",
        brief=HandoffBrief(**BRIEF.model_dump() | {"evidence": list(BRIEF.evidence)}),
        transferred_at=T0 + timedelta(minutes=2),
        sla_due_at=T0 + timedelta(minutes=242),
    )


@pytest.mark.parametrize("field", ["customer_asks", "tried", "promised"])
def test_a_transfer_without_what_was_promised_is_refused_naming_the_field(field):
    incomplete = TRANSFER.model_copy(update={"brief": BRIEF.model_copy(update={field: "  "})})

    with pytest.raises(MissingField, match=f"brief.{field}"):
        run(CASE, [OPENED], incomplete)


def test_a_transfer_to_a_team_that_does_not_take_the_category_is_refused_naming_the_state():
    sellers = Team(
        team_id="team-seller-support", categories=frozenset({Category.SELLER_ISSUE}), response_sla_minutes=60
    )

    with pytest.raises(IllegalState, match="is open; team team-seller-support does not take"):
        run(CASE, [OPENED], TRANSFER.model_copy(update={"team": sellers}))


def test_a_restricted_team_takes_only_cases_the_rules_send_to_it():
    security = Team(
        team_id="team-account-security",
        restricted=True,
        response_sla_minutes=60,
        categories=frozenset({Category.DELIVERY_DRIVER_CONDUCT}),
    )

    with pytest.raises(IllegalState, match="only takes cases the routing rules send"):
        run(CASE, [OPENED], TRANSFER.model_copy(update={"team": security}))


def test_the_partner_sla_fires_once():
    given = [OPENED, *run(CASE, [OPENED], TRANSFER)]
    late = T0 + timedelta(minutes=241)

    assert run(CASE, given, FireDueTimers(), at=T0 + timedelta(minutes=239)) == []
    [fired] = run(CASE, given, FireDueTimers(), at=late)
    assert fired.reason == EscalationReason.SLA_BREACH
    assert run(CASE, [*given, fired], FireDueTimers(), at=late + timedelta(hours=1)) == []


def test_a_partner_outcome_stops_the_sla_clock():
    given = [OPENED, *run(CASE, [OPENED], TRANSFER)]
    given += run(
        CASE, given, RecordPartnerOutcome(team_id=LOGISTICS.team_id, outcome_for_customer="We retrained the driver.")
    )

    assert isinstance(given[-1], PartnerOutcomeRecorded)
    assert due_timers(CASE.fold(given), T0 + timedelta(days=1)) == []


ORDER = OrderFacts(
    order_id="ord-114-5523190",
    currency="GBP",
    lines={
        "SKU-88213-BLU": OrderLine(quantity=2, unit_price=Decimal("29.99"), shipping_fee=Decimal("7.98")),
        "SKU-1": OrderLine(quantity=1, unit_price=Decimal("10.00"), shipping_fee=Decimal("3.00")),
    },
)
AGENT_POLICY = ActionPolicy(order=ORDER, goodwill_alone=Decimal("25"), goodwill_max=Decimal("250"))
ABOUT_THE_ORDER = OPENED.model_copy(update={"order_id": "ord-114-5523190"})


def action(
    kind: ResolutionAction,
    value: str | None = None,
    items=(("SKU-88213-BLU", 2),),
    order_id: str = "ord-114-5523190",
    policy: ActionPolicy = AGENT_POLICY,
    currency: str = "GBP",
    action_id: str = "act-1",
) -> RequestResolutionAction:
    return RequestResolutionAction(
        action_id=action_id,
        action=kind,
        order_id=order_id,
        policy=policy,
        items=tuple(ItemQuantity(sku=sku, quantity=n) for sku, n in items),
        amount=None if value is None else Money(value=value, currency=currency),
    )


def test_cancelling_undelivered_items_asks_orders_with_order_items_and_amount():
    command = action(ResolutionAction.CANCEL_ITEMS, "7.98")

    [event] = run(CASE, [ABOUT_THE_ORDER], command)

    assert event == ResolutionActionRequested(
        complaint_id=CID,
        action_id="act-1",
        action=ResolutionAction.CANCEL_ITEMS,
        order_id="ord-114-5523190",
        items=[ItemQuantity(sku="SKU-88213-BLU", quantity=2)],
        amount=Money(value="7.98", currency="GBP"),
        requested_at=T0,
    )
    assert run(CASE, [ABOUT_THE_ORDER, event], command) == []


def test_a_refund_without_an_amount_is_refused_naming_the_field():
    with pytest.raises(MissingField, match="amount"):
        run(
            CASE,
            [ABOUT_THE_ORDER],
            RequestResolutionAction(action_id="act-1", action=ResolutionAction.GOODWILL_CREDIT, order_id="ord-1"),
        )


@pytest.mark.parametrize(
    "command, field",
    [
        (action(ResolutionAction.GOODWILL_CREDIT, "5.00", order_id="ord-999"), "order_id"),
        (action(ResolutionAction.CANCEL_ITEMS, "5.00", items=(("SKU-NOT-ON-IT", 1),)), "items.0.sku"),
        (action(ResolutionAction.RESHIP, items=(("SKU-1", 2),)), "items.0.quantity"),
        (action(ResolutionAction.REFUND_SHIPPING, "7.99"), "amount.value"),  # the line's fee is 7.98
        (action(ResolutionAction.CANCEL_ITEMS, "67.97"), "amount.value"),  # 2 x 29.99 + 7.98 = 67.96
        (action(ResolutionAction.CANCEL_ITEMS, "-1.00"), "amount.value"),
        (action(ResolutionAction.REFUND_SHIPPING, "1.00", currency="EUR"), "amount.currency"),
        (
            action(
                ResolutionAction.GOODWILL_CREDIT,
                "250.01",
                items=(),
                policy=AGENT_POLICY.model_copy(update={"by_supervisor": True}),
            ),
            "amount.value",
        ),
    ],
)
def test_an_action_that_does_not_fit_the_case_s_order_or_the_policy_is_refused_naming_the_field(command, field):
    with pytest.raises(InvalidField) as refused:
        run(CASE, [ABOUT_THE_ORDER], command)
    assert refused.value.field == field


def test_refunds_on_a_case_never_add_up_to_more_than_the_order_is_worth():
    first = run(CASE, [ABOUT_THE_ORDER], action(ResolutionAction.CANCEL_ITEMS, "67.96"))
    again = action(ResolutionAction.CANCEL_ITEMS, "0.05", items=(("SKU-1", 1),), action_id="act-2")
    after = run(CASE, [ABOUT_THE_ORDER, *first], again)  # 67.96 + 0.05 <= 80.96: fine
    with pytest.raises(InvalidField, match="exceed the order's value"):
        run(
            CASE,
            [ABOUT_THE_ORDER, *first, *after],
            action(ResolutionAction.CANCEL_ITEMS, "13.00", items=(("SKU-1", 1),), action_id="act-3"),
        )


def test_goodwill_above_the_agent_ceiling_needs_a_supervisor_who_may_give_it():
    credit = action(ResolutionAction.GOODWILL_CREDIT, "25.01", items=())
    with pytest.raises(NeedsSupervisor, match="need a supervisor"):
        run(CASE, [ABOUT_THE_ORDER], credit)
    by_supervisor = credit.model_copy(update={"policy": AGENT_POLICY.model_copy(update={"by_supervisor": True})})
    assert len(run(CASE, [ABOUT_THE_ORDER], by_supervisor)) == 1


def test_a_case_about_no_order_takes_no_resolution_action():
    with pytest.raises(IllegalState, match="names no order"):
        run(CASE, [OPENED], action(ResolutionAction.GOODWILL_CREDIT, "5.00", items=()))


def test_resolving_records_the_recap_and_next_steps_and_a_second_resolve_is_refused():
    resolve = Resolve(
        agent_id="agt-cy",
        recap="We cancelled the 2 undelivered items.",
        next_steps=("The refund lands within 3 working days.",),
    )

    [resolved] = run(CASE, [OPENED], resolve)

    assert resolved == ComplaintResolved(
        complaint_id=CID,
        agent_id="agt-cy",
        recap="We cancelled the 2 undelivered items.",
        next_steps=["The refund lands within 3 working days."],
        resolved_at=T0,
    )
    with pytest.raises(IllegalState, match="the case is resolved"):
        run(CASE, [OPENED, resolved], resolve)


def test_a_resolved_case_can_be_reopened_and_then_resolved_again():
    resolve = Resolve(agent_id="agt-cy", recap="Done.")
    given = [OPENED, *run(CASE, [OPENED], resolve)]

    events = run(CASE, given, Reopen(), resolve)

    assert [type(e) for e in events] == [CaseReopened, ComplaintResolved]


def test_a_command_on_a_case_routing_never_opened_is_refused_as_not_found():
    with pytest.raises(NotFound):
        run(CASE, [], Resolve(agent_id="agt-cy", recap="Done."))


# --- escalation -----------------------------------------------------------------------------------


def test_four_messages_with_no_change_escalate_once_not_four_times():
    contacts = [RecordContact(contact_id=f"m-{i}") for i in range(7)]

    events = run_each(contacts)

    escalations = [e for e in events if isinstance(e, Escalated)]
    assert len(escalations) == 1 and escalations[0].reason == EscalationReason.REPEATED_CONTACTS


def run_each(commands, step=timedelta(minutes=30)) -> list[Event]:
    history: list[Event] = [OPENED]
    for i, command in enumerate(commands):
        history += run(CASE, history, command, at=T0 + (i + 1) * step)
    return history[1:]


def test_contacts_with_progress_in_between_do_not_escalate():
    commands = [
        RecordContact(contact_id="m-1"),
        RecordContact(contact_id="m-2"),
        TRANSFER,
        RecordContact(contact_id="m-3"),
        RecordContact(contact_id="m-4"),
    ]

    assert not any(isinstance(e, Escalated) for e in run_each(commands))


def test_the_repeat_rule_counts_only_contacts_in_the_window_since_the_last_change():
    times = tuple(T0 + timedelta(hours=h) for h in (0, 1, 2, 30))

    assert repeated_contacts(times, None, T0 + timedelta(hours=2), 3, timedelta(hours=24))
    assert not repeated_contacts(times, T0 + timedelta(minutes=30), T0 + timedelta(hours=2), 3, timedelta(hours=24))
    assert not repeated_contacts(times, None, T0 + timedelta(hours=30), 2, timedelta(hours=24))


def test_an_unverified_security_case_is_escalated_when_opened():
    events = run(
        CASE,
        [],
        OpenCase(
            complaint_id=CID,
            category=Category.ACCOUNT_LOCKED,
            assurance=Assurance.UNVERIFIED,
            target=Supervisor(kind="supervisor", reason=EscalationReason.SECURITY_UNVERIFIED),
        ),
    )

    assert [type(e) for e in events] == [CaseOpened, Escalated]
    assert events[1].reason == EscalationReason.SECURITY_UNVERIFIED


def test_a_case_the_rules_send_to_a_team_is_announced_as_routed_to_that_team_only():
    events = run(
        CASE,
        [],
        OpenCase(
            complaint_id=CID,
            category=Category.ACCOUNT_LOCKED,
            assurance=Assurance.VERIFIED_CONTACT,
            target=PartnerTeamTarget(kind="partner_team", team_id="team-account-security", only=True),
        ),
    )

    assert [type(e) for e in events] == [CaseOpened, RoutedToTeam]
    assert (events[1].team_id, events[1].only) == ("team-account-security", True)


def test_an_agent_can_escalate_with_a_reason():
    [event] = run(CASE, [OPENED], Escalate(detail="Customer has 3 accounts; needs one owner."))

    assert event.reason == EscalationReason.OTHER


# --- filed complaints and who holds a case ------------------------------------------------------

WRITTEN = Needs(skill=Category.DELIVERY_DRIVER_CONDUCT, language=None, channel=None)


def test_a_filed_complaint_goes_to_the_fitting_agent_with_fewest_cases_then_longest_idle():
    events = run(ROSTER, THREE_AGENTS, AssignCase(complaint_id=CID, needs=WRITTEN))

    assert [(type(e), e.agent_id) for e in events] == [(AgentAssigned, "agt-cy")]
    assert events[0].callback_id is None


def test_a_callback_on_a_case_goes_to_the_agent_holding_it_without_more_load():
    held = THREE_AGENTS + run(ROSTER, THREE_AGENTS, AssignCase(complaint_id=CID, needs=WRITTEN))

    events = run(ROSTER, held, callback())

    assert events == [
        CallbackDispatched(complaint_id=CID, callback_id=CB, agent_id="agt-cy", phone=PHONE, dispatched_at=T0)
    ]
    assert ROSTER.fold(held + events).agents["agt-cy"].cases.keys() == {CID}


def test_a_callback_whose_agent_is_on_a_call_goes_to_another_fitting_agent_who_takes_the_case():
    held = THREE_AGENTS + run(ROSTER, THREE_AGENTS, AssignCase(complaint_id=CID, needs=WRITTEN))
    busy = held + [AgentAvailabilityChanged(agent_id="agt-cy", availability=Availability.ON_CALL, changed_at=T0)]

    events = run(ROSTER, busy, callback())

    assert [type(e) for e in events] == [AgentReleased, AgentAssigned, CallbackDispatched]
    assert events[0].reassigned and events[2].agent_id == "agt-ana"
    roster = ROSTER.fold(busy + events)
    assert roster.agents["agt-cy"].cases == {} and CID in roster.agents["agt-ana"].cases
    assert roster.handling == ()  # a reassignment is not a handling time


def test_a_callback_on_a_queued_case_replaces_its_place_in_the_queue_with_the_callback():
    nobody = [agent("agt-off")]
    queued = nobody + run(ROSTER, nobody, AssignCase(complaint_id=CID, needs=WRITTEN))

    events = run(ROSTER, queued, callback())

    assert [type(e) for e in events] == [QueuedWorkRemoved, WorkQueued, CallbackQueued]
    assert events[2].position == 1
    assert [w.callback_id for w in ROSTER.fold(queued + events).queue] == [CB]


def test_a_case_the_rules_send_to_a_team_is_called_back_only_by_its_members():
    security = Needs(skill=Category.ACCOUNT_LOCKED, team="team-account-security")
    member = AgentRegistered(
        agent_id="agt-sec",
        name="S",
        skills=[Category.REFUND],
        languages=["en"],
        capacity=1,
        teams=["team-account-security"],
        registered_at=T0,
    )
    others = [agent("agt-ana", skills=(Category.ACCOUNT_LOCKED,)), _available("agt-ana", T0 - timedelta(hours=2))]

    assert [type(e) for e in run(ROSTER, others, callback(needs=security))] == [WorkQueued, CallbackQueued]
    dispatched = run(ROSTER, [*others, member, _available("agt-sec", T0)], callback(needs=security))
    assert dispatched[-1].agent_id == "agt-sec"


def test_finishing_a_case_frees_its_agent_for_the_next_queued_work():
    one = [agent("agt-ana"), _available("agt-ana", T0 - timedelta(minutes=5))]
    history = one + run(
        ROSTER, one, AssignCase(complaint_id=CID, needs=WRITTEN), callback(callback_id="cb-2", complaint_id="c-2")
    )
    assert isinstance(history[-1], CallbackQueued)

    events = run(ROSTER, history, FinishCase(complaint_id=CID), at=T0 + timedelta(minutes=9))

    assert [type(e) for e in events] == [AgentReleased, AgentAssigned, CallbackDispatched]
    assert events[2].complaint_id == "c-2"
    assert ROSTER.fold(history + events).handling == (timedelta(minutes=9),)


# --- the partner's side and closing -------------------------------------------------------------

TRANSFERRED = [
    CaseOpened(
        complaint_id=CID, category=Category.DELIVERY_DRIVER_CONDUCT, assurance=Assurance.AUTHENTICATED, opened_at=T0
    )
]
TRANSFERRED += run(CASE, TRANSFERRED, TransferToPartner(team=LOGISTICS, by_agent_id="agt-ana", brief=BRIEF))


def test_the_partner_acknowledges_once_and_only_the_team_that_has_the_case():
    ack = AcknowledgeTransfer(team_id=LOGISTICS.team_id, by="partner-ops-17")

    assert [type(e) for e in run(CASE, TRANSFERRED, ack, ack)] == [PartnerAcknowledged]
    with pytest.raises(IllegalState, match="not with team team-other"):
        run(CASE, TRANSFERRED, AcknowledgeTransfer(team_id="team-other", by="x"))


def test_a_note_is_added_once_per_id():
    note = AddNote(note_id="n-1", author="agt-ana", text="Has dashcam footage.")

    assert [type(e) for e in run(CASE, TRANSFERRED, note, note)] == [CaseNoteAdded]


def test_a_resolved_case_is_closed_once_and_then_refuses_to_be_resolved_naming_closed():
    resolved = TRANSFERRED + run(CASE, TRANSFERRED, Resolve(agent_id="agt-ana", recap="Driver retrained."))

    assert run(CASE, resolved, Close(confirmed=True), Close(confirmed=True)) == [
        CaseClosed(complaint_id=CID, confirmed=True, closed_at=T0)
    ]
    closed = resolved + run(CASE, resolved, Close(confirmed=True))
    with pytest.raises(IllegalState, match="the case is closed"):
        run(CASE, closed, Resolve(agent_id="agt-ana", recap="again"))
    assert run(CASE, TRANSFERRED, Close(confirmed=False)) == []  # not resolved: nothing to close


def test_callbacks_wait_ahead_of_written_work_in_the_order_they_came():
    nobody = [agent("agt-off")]
    history = nobody + run(
        ROSTER,
        nobody,
        AssignCase(complaint_id="c-written", needs=WRITTEN),
        callback("cb-1", "c-1"),
        callback("cb-2", "c-2"),
    )

    assert [w.complaint_id for w in ROSTER.fold(history).queue] == ["c-1", "c-2", "c-written"]
    assert [e.position for e in history if isinstance(e, CallbackQueued)] == [1, 2]
    freed = run(ROSTER, history, ChangeAvailability(agent_id="agt-off", availability=Availability.AVAILABLE))
    assert [e.complaint_id for e in freed if isinstance(e, CallbackDispatched)] == ["c-1"]


# --- "the call connected" ----------------------------------------------------------------------------


def dispatched_to(agent_id: str) -> list[Event]:
    """The roster after a callback on the case went at once to ``agent_id`` (the only one free)."""
    given = [agent(agent_id), _available(agent_id, T0 - timedelta(minutes=5))]
    return given + run(ROSTER, given, callback())


def connect(roster: list[Event], agent_id: str, callback_id: str = CB) -> ConnectCall:
    """What the application asks the case, with the roster's record of the dispatch."""
    return ConnectCall(
        callback_id=callback_id, agent_id=agent_id, dispatch=ROSTER.fold(roster).dispatched.get(callback_id)
    )


def test_the_agent_a_callback_was_dispatched_to_marks_the_call_connected_once():
    roster = dispatched_to("agt-ana")

    events = run(CASE, [OPENED], connect(roster, "agt-ana"), connect(roster, "agt-ana"))

    assert events == [CallConnected(complaint_id=CID, callback_id=CB, agent_id="agt-ana", connected_at=T0)]
    assert callbacks_on(CASE.fold([OPENED, *events]), ROSTER.fold(roster)) == [
        CallbackOnCase(callback_id=CB, agent_id="agt-ana", status="connected", dispatched_at=T0, connected_at=T0)
    ]


def test_a_dispatched_callback_not_yet_connected_shows_as_dispatched_to_its_agent():
    assert callbacks_on(CASE.fold([OPENED]), ROSTER.fold(dispatched_to("agt-ana"))) == [
        CallbackOnCase(callback_id=CB, agent_id="agt-ana", status="dispatched", dispatched_at=T0)
    ]


def test_only_the_agent_the_callback_was_dispatched_to_may_mark_it_connected():
    roster = dispatched_to("agt-ana")

    with pytest.raises(IllegalState, match="callback cb-2026-000107 was dispatched to agt-ana") as refused:
        run(CASE, [OPENED], connect(roster, "agt-bo"))
    assert refused.value.current == "open"


def test_once_connected_another_agent_cannot_claim_the_call():
    roster = dispatched_to("agt-ana")
    given = [OPENED, *run(CASE, [OPENED], connect(roster, "agt-ana"))]

    with pytest.raises(IllegalState, match="is connected to agt-ana"):
        run(CASE, given, connect(roster, "agt-bo"))


def test_a_callback_never_dispatched_on_this_case_is_not_found_naming_it():
    roster = dispatched_to("agt-ana")
    other_case = OPENED.model_copy(update={"complaint_id": "c-2026-000099"})

    with pytest.raises(NotFound, match="no dispatched callback 'cb-unknown'"):
        run(CASE, [OPENED], connect(roster, "agt-ana", "cb-unknown"))
    with pytest.raises(NotFound, match="no dispatched callback 'cb-2026-000107'"):
        run(CASE, [other_case], connect(roster, "agt-ana"))


def test_the_roster_forgets_a_dispatch_once_its_agent_is_released_from_the_case():
    roster = dispatched_to("agt-ana")

    released = run(ROSTER, roster, ReleaseAgent(complaint_id=CID, agent_id="agt-ana"))

    assert ROSTER.fold(roster).dispatched.keys() == {CB}
    assert ROSTER.fold(roster + released).dispatched == {}
    with pytest.raises(NotFound):
        run(CASE, [OPENED], connect(roster + released, "agt-ana"))


def test_junk_filings_from_unverified_complainants_never_keep_a_real_callback_waiting():
    alone = [agent("agt-ana", capacity=2), _available("agt-ana", T0)]
    junk = [AssignCase(complaint_id=f"c-junk-{i}", needs=WRITTEN, provisional=True) for i in range(5)]
    filled = alone + run(ROSTER, alone, *junk)
    assert ROSTER.fold(filled).agents["agt-ana"].provisional == {"c-junk-0", "c-junk-1"}, "2 taken, 3 queued"

    events = run(ROSTER, filled, callback(complaint_id="c-real"))

    assert [(type(e), e.agent_id) for e in events] == [(AgentAssigned, "agt-ana"), (CallbackDispatched, "agt-ana")]
    assert not events[0].provisional


def test_verified_written_work_still_counts_against_a_callback():
    alone = [agent("agt-ana", capacity=1), _available("agt-ana", T0)]
    filled = alone + run(ROSTER, alone, AssignCase(complaint_id="c-verified", needs=WRITTEN))

    events = run(ROSTER, filled, callback(complaint_id="c-real"))

    assert [type(e) for e in events] == [WorkQueued, CallbackQueued]


def test_a_call_on_a_case_held_as_provisional_work_goes_elsewhere_when_its_agent_is_full():
    """Found with routing's consumer handling partitions side by side: the call on a case an agent
    held as provisional written work went to that agent although a call already filled them."""
    alone = [agent("agt-ana", capacity=1), _available("agt-ana", T0)]
    held = alone + run(ROSTER, alone, AssignCase(complaint_id="c-written", needs=WRITTEN, provisional=True))
    full = held + run(
        ROSTER, held, callback("cb-other", complaint_id="c-other")
    )  # provisional work never blocks a call

    events = run(ROSTER, full, callback("cb-written", complaint_id="c-written"))

    assert [type(e) for e in events] == [AgentReleased, WorkQueued, CallbackQueued], "no call beyond capacity"
