"""Routing's stories on the real broker and store: busy agents and the queue, fifty callbacks at
once, the warm transfer and its SLA clock, resolution and reopening, repeated contacts, and a
restart in the middle of it all."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from contracts.intake import Assurance, Category, CustomerMessageReceived
from contracts.notify import ComplaintReopened, CustomerConfirmedClosed, EscalationRequested
from contracts.routing import (
    AgentAssigned,
    AgentRegistered,
    AgentReleased,
    CallbackDispatched,
    CallbackQueued,
    CallConnected,
    ContactRecorded,
    Escalated,
)
from services.routing.domain import ROSTER_STREAM, case_stream
from services.routing.projections import Timers
from tests.integration.routing.conftest import running_routing, token
from tests.integration.routing.story import (
    a_callback_on_a_driver_complaint,
    callback_on,
    filed,
    logged,
    make_available,
    published_for,
    put_on_intake_topic,
    put_on_topic,
    register,
)
from tests.integration.support import quiescent, wait_for

BRIEF = {
    "customer_asks": "Wants the driver's conduct on Elm Road looked into.",
    "tried": "Confirmed the delivery route and time with him.",
    "evidence": ["1Z999AA10123456784"],
    "promised": "The partner team will tell him the outcome.",
}
LOGISTICS = {
    "team_id": "team-logistics",
    "name": "Regional logistics partner",
    "categories": ["delivery_driver_conduct", "late_delivery"],
    "response_sla_minutes": 240,
}


async def set_availability(routing, agent_id: str, availability: str) -> None:
    answer = await routing.put(
        f"/api/agents/{agent_id}/availability",
        json={"availability": availability},
        headers=token(routing, "agent", agent_id),
    )
    assert answer.status_code == 200, answer.text


async def add_team(routing, team: dict) -> None:
    answer = await routing.post("/api/partner-teams", json=team, headers=token(routing, "admin", "adm-1"))
    assert answer.status_code == 201, answer.text


async def case_with_agent(routing, agent_id: str = "agt-ana") -> str:
    """A driver complaint filed and given to ``agent_id`` (the only agent)."""
    await register(routing, agent_id, ["delivery_driver_conduct"])
    await make_available(routing, agent_id)
    complaint = filed()
    put_on_intake_topic(routing, complaint)
    [assigned] = await asyncio.to_thread(
        published_for, routing.config.kafka_bootstrap_servers, complaint.complaint_id, 1
    )
    assert assigned.data["agent_id"] == agent_id
    return complaint.complaint_id


def count(events, kind) -> int:
    return sum(isinstance(e, kind) for e in events)


# --- callbacks and the queue ---------------------------------------------------------------------


async def test_with_every_fitting_agent_busy_a_callback_queues_and_goes_to_the_first_one_free(routing):
    for agent_id in ("agt-ana", "agt-cy"):
        await register(routing, agent_id, ["delivery_driver_conduct"])
        await set_availability(routing, agent_id, "on_call")
    complaint_id, callback_id = a_callback_on_a_driver_complaint(routing)
    [queued] = await asyncio.to_thread(published_for, routing.config.kafka_bootstrap_servers, complaint_id, 1)
    assert queued.type == "complaints.routing.CallbackQueued.v1" and queued.data["position"] == 1

    await set_availability(routing, "agt-cy", "available")

    _, assigned, dispatched = await asyncio.to_thread(
        published_for, routing.config.kafka_bootstrap_servers, complaint_id, 3
    )
    assert (assigned.data["agent_id"], dispatched.data["agent_id"]) == ("agt-cy", "agt-cy")
    assert dispatched.data["callback_id"] == callback_id


async def test_the_agent_a_callback_went_to_marks_the_call_connected_once_and_no_one_else_can(routing):
    await register(routing, "agt-ana", ["delivery_driver_conduct"])
    await make_available(routing, "agt-ana")
    complaint_id, callback_id = a_callback_on_a_driver_complaint(routing)
    await asyncio.to_thread(published_for, routing.config.kafka_bootstrap_servers, complaint_id, 2)
    connected = f"/api/cases/{complaint_id}/callbacks/{callback_id}/connected"
    case = (await routing.get(f"/api/cases/{complaint_id}", headers=token(routing, "agent", "agt-ana"))).json()
    assert [(c["callback_id"], c["agent_id"], c["status"]) for c in case["callbacks"]] == [
        (callback_id, "agt-ana", "dispatched")
    ]
    assert "phone" not in case["callbacks"][0]

    await register(routing, "agt-cy", ["other"])
    someone_else = await routing.post(connected, headers=token(routing, "agent", "agt-cy"))
    stranger = await routing.post(connected, headers=token(routing, "agent", "agt-not-on-the-roster"))
    unknown = await routing.post(
        f"/api/cases/{complaint_id}/callbacks/cb-nope/connected", headers=token(routing, "agent", "agt-ana")
    )
    first = await routing.post(connected, headers=token(routing, "agent", "agt-ana"))
    again = await routing.post(connected, headers=token(routing, "agent", "agt-ana"))

    assert someone_else.status_code == 409 and someone_else.json()["current_state"] == "open"
    assert "was dispatched to agt-ana" in someone_else.json()["message"]
    assert stranger.status_code == 403 and "not on the roster" in stranger.json()["message"]
    assert unknown.status_code == 404 and "'cb-nope'" in unknown.json()["message"]
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    [call] = first.json()["callbacks"]
    assert (call["status"], call["agent_id"]) == ("connected", "agt-ana") and call["connected_at"]
    assert again.json()["callbacks"] == first.json()["callbacks"]
    assert count(await logged(routing, case_stream(complaint_id)), CallConnected) == 1
    *_, published = await asyncio.to_thread(published_for, routing.config.kafka_bootstrap_servers, complaint_id, 3)
    assert published.type == "complaints.routing.CallConnected.v1"
    assert (published.data["callback_id"], published.data["agent_id"]) == (callback_id, "agt-ana")


async def test_fifty_callbacks_at_once_for_five_agents_none_lost_none_beyond_capacity_queue_order_kept(routing):
    capacities = {"agt-1": 1, "agt-2": 1, "agt-3": 1, "agt-4": 2, "agt-5": 2}
    for agent_id, capacity in capacities.items():
        await register(routing, agent_id, ["delivery_driver_conduct"], capacity=capacity)
        await make_available(routing, agent_id)
    complaints = [filed() for _ in range(50)]
    callbacks = [callback_on(c) for c in complaints]
    put_on_intake_topic(routing, *complaints, *callbacks)  # one burst over every partition
    svc = routing.app.state.services

    def outcome_of_each_callback(events) -> Counter:
        return Counter(e.callback_id for e in events if isinstance(e, (CallbackDispatched, CallbackQueued)))

    async def all_handled():
        return len(outcome_of_each_callback(await logged(routing, ROSTER_STREAM))) == 50

    await wait_for(all_handled, timeout=120)
    first = await logged(routing, ROSTER_STREAM)
    assert outcome_of_each_callback(first) == Counter({c.callback_id: 1 for c in callbacks}), "one outcome each"
    queued = sorted((e for e in first if isinstance(e, CallbackQueued)), key=lambda e: e.position)
    assert [e.position for e in queued] == list(range(1, len(queued) + 1))
    assert count(first, CallbackDispatched) == sum(capacities.values()) and len(queued) == 43

    # agents finish their cases one by one; each frees a place for the next callback in the queue
    resolved = set()
    while len(resolved) < 50:
        roster = await svc.routing.roster()
        agent_id, complaint_id = next((a.agent_id, c) for a in roster.agents.values() for c in a.cases)
        answer = await routing.post(
            f"/api/cases/{complaint_id}/resolve", json={"recap": "Sorted."}, headers=token(routing, "agent", agent_id)
        )
        assert answer.status_code == 200, answer.text
        resolved.add(complaint_id)

    events = await logged(routing, ROSTER_STREAM)
    # Replayed step by step: no agent ever over capacity. The complaints are unverified, so an
    # agent may hold one as provisional written work, which never blocks a call (ADR 0012); a
    # call on it makes it real work. Counted as the rule says, from the events alone.
    held: dict[str, dict[str, bool]] = {a: {} for a in capacities}  # agent -> case -> provisional
    for event in events:
        if isinstance(event, AgentAssigned):
            held[event.agent_id][event.complaint_id] = event.provisional
        elif isinstance(event, CallbackDispatched) and event.complaint_id in held[event.agent_id]:
            held[event.agent_id][event.complaint_id] = False
        elif isinstance(event, AgentReleased):
            held[event.agent_id].pop(event.complaint_id, None)
        for agent_id, cases in held.items():
            real = sum(1 for provisional in cases.values() if not provisional)
            assert real <= capacities[agent_id], f"{agent_id} over capacity after {event}"
    dispatched_later = [e.callback_id for e in events[len(first) :] if isinstance(e, CallbackDispatched)]
    assert dispatched_later == [e.callback_id for e in queued], "dispatched in queue order"
    assert outcome_of_each_callback(events)[callbacks[0].callback_id] >= 1
    assert all(
        isinstance(e, (AgentRegistered, AgentReleased, AgentAssigned, CallbackDispatched)) for e in events[len(first) :]
    ), "nothing else happened while the queue drained"


# --- warm transfer, the partner, the SLA clock ---------------------------------------------------


async def test_a_transfer_without_a_brief_is_refused_naming_the_field_and_bad_targets_are_named(routing):
    complaint_id = await case_with_agent(routing)
    await add_team(routing, LOGISTICS)
    await add_team(routing, {**LOGISTICS, "team_id": "team-refunds", "categories": ["refund"]})
    agent = token(routing, "agent", "agt-ana")

    no_brief = await routing.post(
        f"/api/cases/{complaint_id}/transfer", headers=agent, json={"team_id": "team-logistics"}
    )
    half = await routing.post(
        f"/api/cases/{complaint_id}/transfer",
        headers=agent,
        json={"team_id": "team-logistics", "brief": {**BRIEF, "promised": " "}},
    )
    wrong_team = await routing.post(
        f"/api/cases/{complaint_id}/transfer", headers=agent, json={"team_id": "team-refunds", "brief": BRIEF}
    )
    no_team = await routing.post(
        f"/api/cases/{complaint_id}/transfer", headers=agent, json={"team_id": "team-ghost", "brief": BRIEF}
    )
    no_case = await routing.post(
        "/api/cases/c-ghost/transfer", headers=agent, json={"team_id": "team-logistics", "brief": BRIEF}
    )

    assert no_brief.status_code == 422 and no_brief.json()["message"].startswith("brief.customer_asks is required")
    assert half.status_code == 422 and half.json()["message"].startswith("brief.promised is required")
    assert wrong_team.status_code == 409 and wrong_team.json()["current_state"] == "open"
    assert "team-refunds does not take delivery_driver_conduct" in wrong_team.json()["message"]
    assert no_team.status_code == 404 and "team-ghost" in no_team.json()["message"]
    assert no_case.status_code == 404 and "c-ghost" in no_case.json()["message"]
    assert (await routing.get(f"/api/cases/{complaint_id}", headers=agent)).json()["status"] == "open"


async def test_the_partner_sees_the_brief_and_a_silent_partner_is_escalated_once_when_its_sla_runs_out(routing):
    complaint_id = await case_with_agent(routing)
    await add_team(routing, LOGISTICS)
    transferred = await routing.post(
        f"/api/cases/{complaint_id}/transfer",
        headers=token(routing, "agent", "agt-ana"),
        json={"team_id": "team-logistics", "brief": BRIEF},
    )
    assert transferred.status_code == 200, transferred.text
    partner = token(routing, "partner", "partner-ops-17", team="team-logistics")

    async def in_the_inbox():
        answer = await routing.get("/api/partner-teams/team-logistics/inbox", headers=partner)
        return [c for c in answer.json()["cases"] if c["complaint_id"] == complaint_id]

    [case] = await wait_for(in_the_inbox, timeout=30)
    assert case["brief"]["customer_asks"] == BRIEF["customer_asks"] and case["by_agent_id"] == "agt-ana"
    other_team = token(routing, "partner", "p-9", team="team-refunds")
    assert (await routing.get("/api/partner-teams/team-logistics/inbox", headers=other_team)).status_code == 404

    svc, timers = routing.app.state.services, Timers(routing.app.state.services.runtime.store.db)
    sla_due = datetime.fromisoformat(case["sla_due_at"])
    await wait_for(lambda: timers.due(sla_due), timeout=30)  # the index has caught up
    before, after = sla_due - timedelta(minutes=1), sla_due + timedelta(minutes=1)
    assert await svc.routing.fire_due_timers(await timers.due(before), before) == 0
    assert await timers.due(before) == []
    fired = await svc.routing.fire_due_timers(await timers.due(after), after)
    again = await svc.routing.fire_due_timers([complaint_id], after + timedelta(hours=1))  # a stale index

    assert (fired, again) == (1, 0)
    [escalated] = [e for e in await logged(routing, case_stream(complaint_id)) if isinstance(e, Escalated)]
    assert escalated.reason == "sla_breach" and "team-logistics" in escalated.detail

    async def on_the_supervisors_queue():
        answer = await routing.get("/api/supervisor/queue", headers=token(routing, "supervisor"))
        return [c for c in answer.json()["cases"] if c["complaint_id"] == complaint_id]

    [queued] = await wait_for(on_the_supervisors_queue, timeout=30)
    assert queued["escalations"][0]["reason"] == "sla_breach"


async def test_the_partner_acknowledges_notes_and_records_an_outcome_then_the_agent_resolves(routing):
    complaint_id = await case_with_agent(routing)
    await add_team(routing, LOGISTICS)
    agent = token(routing, "agent", "agt-ana")
    partner = token(routing, "partner", "partner-ops-17", team="team-logistics")
    base = f"/api/partner-teams/team-logistics/cases/{complaint_id}"
    assert (await routing.post(f"{base}/acknowledge", headers=partner)).status_code == 404  # not theirs yet

    await routing.post(
        f"/api/cases/{complaint_id}/transfer", headers=agent, json={"team_id": "team-logistics", "brief": BRIEF}
    )
    acknowledged = await routing.post(f"{base}/acknowledge", headers=partner)
    noted = await routing.post(f"{base}/notes", headers=partner, json={"text": "Depot manager informed."})
    empty = await routing.post(f"{base}/outcome", headers=partner, json={"outcome_for_customer": " "})
    outcome = await routing.post(
        f"{base}/outcome",
        headers=partner,
        json={"outcome_for_customer": "We spoke to the driver and retrained him.", "internal_note": "Driver D-311."},
    )
    resolved = await routing.post(
        f"/api/cases/{complaint_id}/resolve",
        headers=agent,
        json={"recap": "The partner retrained the driver.", "next_steps": ["Nothing more is needed from you."]},
    )
    twice = await routing.post(
        f"/api/cases/{complaint_id}/resolve", headers=token(routing, "supervisor"), json={"recap": "Again."}
    )

    assert [r.status_code for r in (acknowledged, noted, empty, outcome, resolved)] == [200, 200, 422, 200, 200]
    assert empty.json()["message"].startswith("outcome_for_customer is required")
    assert twice.status_code == 409 and twice.json()["current_state"] == "resolved"
    published = await asyncio.to_thread(published_for, routing.config.kafka_bootstrap_servers, complaint_id, 7)
    assert [e.type.split(".")[2] for e in published] == [
        "AgentAssigned",
        "TransferredToPartner",
        "PartnerAcknowledged",
        "CaseNoteAdded",
        "PartnerOutcomeRecorded",
        "AgentAssigned",
        "ComplaintResolved",
    ]
    assert published[5].data["reason"] == "partner outcome recorded: back to the agent who had it"
    roster = await routing.app.state.services.routing.roster()
    assert roster.agents["agt-ana"].cases == {}, "resolving frees the agent"


async def test_a_reopened_case_goes_back_to_its_agent_and_a_confirmed_one_is_closed(routing):
    complaint_id = await case_with_agent(routing)
    agent = token(routing, "agent", "agt-ana")
    await routing.post(f"/api/cases/{complaint_id}/resolve", headers=agent, json={"recap": "Refunded."})
    now = datetime.now(UTC)

    put_on_topic(
        routing,
        "notify",
        ComplaintReopened(complaint_id=complaint_id, via="reply", reason="No, the driver came again.", reopened_at=now),
    )

    *_, back = await asyncio.to_thread(published_for, routing.config.kafka_bootstrap_servers, complaint_id, 3)
    assert back.type == "complaints.routing.AgentAssigned.v1" and back.data["agent_id"] == "agt-ana"
    assert "reopened" in back.data["reason"]
    assert (await routing.get(f"/api/cases/{complaint_id}", headers=agent)).json()["status"] == "open"

    await routing.post(f"/api/cases/{complaint_id}/resolve", headers=agent, json={"recap": "Driver retrained."})
    put_on_topic(routing, "notify", CustomerConfirmedClosed(complaint_id=complaint_id, via="link", confirmed_at=now))

    async def closed():
        return (await routing.get(f"/api/cases/{complaint_id}", headers=agent)).json()["status"] == "closed"

    await wait_for(closed, timeout=60)
    late = await routing.post(
        f"/api/cases/{complaint_id}/resolve", headers=token(routing, "supervisor"), json={"recap": "Again."}
    )
    assert late.status_code == 409 and late.json()["current_state"] == "closed"
    no_longer_hers = await routing.post(f"/api/cases/{complaint_id}/resolve", headers=agent, json={"recap": "Again."})
    assert no_longer_hers.status_code == 409 and no_longer_hers.json()["current_state"] == "closed"


# --- escalation ---------------------------------------------------------------------------------


async def test_four_customer_messages_with_no_change_escalate_once_not_four_times(routing):
    complaint_id = await case_with_agent(routing)

    put_on_intake_topic(
        routing,
        *[
            CustomerMessageReceived(
                complaint_id=complaint_id,
                message_id=f"<m{i}@mail.example.com>",
                channel="email",
                text="Any news? The driver keeps coming.",
                sender="tom.ellis@example.com",
                received_at=datetime.now(UTC),
            )
            for i in range(5)
        ],
    )

    async def five_contacts():
        events = await logged(routing, case_stream(complaint_id))
        return count(events, ContactRecorded) == 5 and events

    events = await wait_for(five_contacts, timeout=60)
    [escalated] = [e for e in events if isinstance(e, Escalated)]
    assert escalated.reason == "repeated_contacts"


async def test_a_locked_account_goes_to_the_security_team_only_and_only_its_members_call_back(routing):
    await add_team(
        routing,
        {
            "team_id": "team-account-security",
            "name": "Account security",
            "categories": ["account_locked"],
            "response_sla_minutes": 60,
            "restricted": True,
        },
    )
    await register(routing, "agt-generalist", ["account_locked", "delivery_driver_conduct"])
    await make_available(routing, "agt-generalist")
    complaint = filed(Category.ACCOUNT_LOCKED, assurance=Assurance.AUTHENTICATED)
    put_on_intake_topic(routing, complaint, callback_on(complaint))
    security = token(routing, "partner", "sec-1", team="team-account-security")

    async def in_the_security_inbox():
        answer = await routing.get("/api/partner-teams/team-account-security/inbox", headers=security)
        return [c for c in answer.json()["cases"] if c["complaint_id"] == complaint.complaint_id]

    [case] = await wait_for(in_the_security_inbox, timeout=60)
    assert case["status"] == "routed"
    routed, queued = await asyncio.to_thread(
        published_for, routing.config.kafka_bootstrap_servers, complaint.complaint_id, 2
    )
    assert (routed.type, routed.data["team_id"], routed.data["only"]) == (
        "complaints.routing.RoutedToTeam.v1",
        "team-account-security",
        True,
    )
    assert queued.type == "complaints.routing.CallbackQueued.v1", "the generalist may not take it"

    await register(routing, "agt-security", ["account_locked"], teams=["team-account-security"])
    await make_available(routing, "agt-security")

    _, _, _, dispatched = await asyncio.to_thread(
        published_for, routing.config.kafka_bootstrap_servers, complaint.complaint_id, 4
    )
    assert dispatched.type == "complaints.routing.CallbackDispatched.v1"
    assert dispatched.data["agent_id"] == "agt-security"


# --- restart ----------------------------------------------------------------------------------------


async def test_after_a_restart_the_roster_queue_and_timers_come_back_and_nothing_is_done_twice(routing_config):
    async with running_routing(routing_config) as before:
        complaint_id = await case_with_agent(before)
        await add_team(before, LOGISTICS)
        await before.post(
            f"/api/cases/{complaint_id}/transfer",
            headers=token(before, "agent", "agt-ana"),
            json={"team_id": "team-logistics", "brief": BRIEF},
        )
        await set_availability(before, "agt-ana", "offline")
        waiting = filed()
        callback = callback_on(waiting)
        put_on_intake_topic(before, waiting, callback)
        [queued] = await asyncio.to_thread(
            published_for, routing_config.kafka_bootstrap_servers, waiting.complaint_id, 1
        )
        assert queued.type == "complaints.routing.CallbackQueued.v1"
        timers = Timers(before.app.state.services.runtime.store.db)
        await wait_for(lambda: timers.due(datetime.now(UTC) + timedelta(days=1)), timeout=30)

    async with running_routing(routing_config) as after:  # a new process's state: only the store
        timers = Timers(after.app.state.services.runtime.store.db)
        roster = await after.app.state.services.routing.roster()
        assert [w.callback_id for w in roster.queue] == [callback.callback_id]
        await make_available(after, "agt-ana")
        later = datetime.now(UTC) + timedelta(days=1)
        fired = await after.app.state.services.routing.fire_due_timers(await timers.due(later), later)
        refired = await after.app.state.services.routing.fire_due_timers([complaint_id], later)
        put_on_intake_topic(after, callback)  # intake redelivers the callback: nothing new
        await quiescent(after.app.state.services.runtime)

        events = await asyncio.to_thread(published_for, routing_config.kafka_bootstrap_servers, waiting.complaint_id, 3)
        assert [e.type.split(".")[2] for e in events] == ["CallbackQueued", "AgentAssigned", "CallbackDispatched"]
        assert (fired, refired) == (1, 0)
        roster_log = await logged(after, ROSTER_STREAM)
        assert count(roster_log, CallbackDispatched) == 1 and count(roster_log, CallbackQueued) == 1


async def test_notify_asking_for_a_human_puts_the_case_or_the_person_on_the_supervisors_queue(routing):
    complaint_id = await case_with_agent(routing)
    now = datetime.now(UTC)
    asked = dict(
        address="maria.chen@willowandclay.example",
        template="seller_login_reminder",
        reason="cannot_act",
        detail="asks to log in but the account is locked",
        requested_at=now,
    )

    put_on_topic(
        routing,
        "notify",
        EscalationRequested(complaint_id=complaint_id, recipient="sel-48213", **asked),
        EscalationRequested(recipient="sel-77001", **asked),
    )

    async def both_queued():
        answer = await routing.get("/api/supervisor/queue", headers=token(routing, "supervisor"))
        cases = answer.json()["cases"]
        return len(cases) == 2 and {c["complaint_id"] or c["recipient"]: c for c in cases}

    queued = await wait_for(both_queued, timeout=60)
    assert queued[complaint_id]["escalations"][0]["reason"] == "notification_blocked"
    assert "seller_login_reminder" in queued["sel-77001"]["escalations"][0]["detail"]
    assert queued["sel-77001"]["address"] == asked["address"]
