"""Routing refuses what a person may not do, tried as an attacker would through the public API on the
real broker and store: every refusal names why, writes nothing, and the rightful path still works."""

from __future__ import annotations

import asyncio

from contracts import TOPICS
from contracts.intake import Category
from services.routing.domain import ROSTER_STREAM, case_stream
from tests.integration.routing.conftest import token
from tests.integration.routing.story import filed, logged, make_available, published_for, put_on_intake_topic, register
from tests.integration.support import events_on, wait_for

ORDER = "114-5523190-0054321"  # orders.json: a rain jacket (15.00 + 3.99) and a scarf (12.50 + 3.99)
BRIEF = {"customer_asks": "Both items back.", "tried": "Tracking.", "promised": "An answer today."}
SECURITY = {
    "team_id": "team-account-security",
    "name": "Account security",
    "categories": ["account_locked"],
    "response_sla_minutes": 60,
    "restricted": True,
}


async def a_case_held_by(routing, agent_id: str) -> str:
    """A complaint about ORDER, given to ``agent_id`` (the only agent with the skill)."""
    complaint = filed(Category.PART_OF_ORDER_MISSING, order_id=ORDER)
    put_on_intake_topic(routing, complaint)
    [assigned] = await asyncio.to_thread(
        published_for, routing.config.kafka_bootstrap_servers, complaint.complaint_id, 1
    )
    assert assigned.data["agent_id"] == agent_id
    return complaint.complaint_id


async def nothing_more_about(routing, complaint_id: str, published: int) -> None:
    """No commit was added to the case, and once routing has nothing left to publish, its topic
    still has just ``published`` events about it."""
    store = routing.app.state.services.runtime.store
    stream = await store.read_stream(case_stream(complaint_id))
    assert len(stream) == 1, [c.events for c in stream]
    await wait_for(lambda: no_pending(store))  # quiescent: every commit published
    seen = await asyncio.to_thread(
        events_on, routing.config.kafka_bootstrap_servers, TOPICS["routing"], complaint_id, published, 30, 1.0
    )
    assert len(seen) == published, [e.type for e in seen]


async def no_pending(store) -> bool:
    return await store.pending.count_documents({}) == 0


async def test_an_agent_acts_only_on_a_case_it_holds_and_a_token_off_the_roster_acts_on_none(routing):
    await register(routing, "agt-holder", ["part_of_order_missing"])
    await register(routing, "agt-nosy", ["other"])
    for agent_id in ("agt-holder", "agt-nosy"):
        await make_available(routing, agent_id)
    complaint_id = await a_case_held_by(routing, "agt-holder")
    base = f"/api/cases/{complaint_id}"
    attempts = {
        "resolve": {"recap": "Done."},
        "transfer": {"team_id": "team-x", "brief": BRIEF},
        "escalate": {"detail": "Because."},
        "release": {},
        "notes": {"text": "Mine now."},
        "actions": {"action": "goodwill_credit", "order_id": ORDER, "amount": {"value": "10.00", "currency": "GBP"}},
    }

    for caller, why in (("agt-nosy", "is not yours"), ("agt-ghost", "not on the roster")):
        for path, body in attempts.items():
            answer = await routing.post(f"{base}/{path}", json=body, headers=token(routing, "agent", caller))
            assert answer.status_code == 403 and why in answer.json()["message"], (caller, path, answer.text)
    release_her = await routing.post(
        f"{base}/release", json={"agent_id": "agt-holder"}, headers=token(routing, "agent", "agt-nosy")
    )
    assert release_her.status_code == 403
    await nothing_more_about(routing, complaint_id, published=1)

    resolved = await routing.post(
        f"{base}/resolve", json={"recap": "Refunded the scarf."}, headers=token(routing, "agent", "agt-holder")
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved", resolved.text


async def test_a_resolution_action_must_fit_the_case_s_own_order_and_big_credits_need_a_supervisor(routing):
    await register(routing, "agt-holder", ["part_of_order_missing"])
    await make_available(routing, "agt-holder")
    complaint_id = await a_case_held_by(routing, "agt-holder")
    agent = token(routing, "agent", "agt-holder")

    async def ask(body: dict, headers: dict = agent):
        return await routing.post(f"/api/cases/{complaint_id}/actions", json=body, headers=headers)

    credit = {"action": "goodwill_credit", "order_id": ORDER, "amount": {"value": "9999.00", "currency": "GBP"}}
    unrelated = await ask({**credit, "order_id": "114-2087456-3319876"})
    too_much = await ask(credit)
    over_ceiling = await ask({**credit, "amount": {"value": "40.00", "currency": "GBP"}})
    not_on_it = await ask(
        {
            "action": "cancel_items",
            "order_id": ORDER,
            "items": [{"sku": "KETTLE", "quantity": 1}],
            "amount": {"value": "1.00", "currency": "GBP"},
        }
    )
    over_price = await ask(
        {
            "action": "cancel_items",
            "order_id": ORDER,
            "items": [{"sku": "SKU-10442-RED", "quantity": 1}],
            "amount": {"value": "16.50", "currency": "GBP"},
        }
    )

    assert (unrelated.status_code, unrelated.json()["field"]) == (422, "order_id")
    assert (too_much.status_code, too_much.json()["field"]) == (422, "amount.value")
    assert over_ceiling.status_code == 403 and over_ceiling.json()["code"] == "needs_supervisor"
    assert (not_on_it.status_code, not_on_it.json()["field"]) == (422, "items.0.sku")
    assert (over_price.status_code, over_price.json()["field"]) == (422, "amount.value")  # 12.50 + 3.99
    await nothing_more_about(routing, complaint_id, published=1)

    fair = await ask(
        {
            "action": "cancel_items",
            "order_id": ORDER,
            "items": [{"sku": "SKU-10442-RED", "quantity": 1}],
            "amount": {"value": "16.49", "currency": "GBP"},
        }
    )
    approved = await ask(
        {**credit, "amount": {"value": "40.00", "currency": "GBP"}}, headers=token(routing, "supervisor", "sup-ola")
    )
    assert fair.status_code == approved.status_code == 200, (fair.text, approved.text)


async def test_a_partner_of_another_team_finds_nothing_not_even_the_case_s_state(routing):
    await register(routing, "agt-holder", ["part_of_order_missing"])
    await make_available(routing, "agt-holder")
    admin = token(routing, "admin", "adm-1")
    for team_id in ("team-ours", "team-theirs"):
        answer = await routing.post(
            "/api/partner-teams",
            headers=admin,
            json={
                "team_id": team_id,
                "name": team_id,
                "categories": ["part_of_order_missing"],
                "response_sla_minutes": 60,
            },
        )
        assert answer.status_code == 201, answer.text
    complaint_id = await a_case_held_by(routing, "agt-holder")
    moved = await routing.post(
        f"/api/cases/{complaint_id}/transfer",
        json={"team_id": "team-ours", "brief": BRIEF},
        headers=token(routing, "agent", "agt-holder"),
    )
    assert moved.status_code == 200, moved.text
    theirs = token(routing, "partner", "pat-9", team="team-theirs")

    for path in (
        f"/api/partner-teams/team-ours/cases/{complaint_id}/acknowledge",
        f"/api/partner-teams/team-theirs/cases/{complaint_id}/acknowledge",
        f"/api/partner-teams/team-theirs/cases/{complaint_id}/outcome",
    ):
        answer = await routing.post(
            path, headers=theirs, json={"outcome_for_customer": "Done."} if path.endswith("outcome") else None
        )
        assert answer.status_code == 404 and "current_state" not in answer.json(), (path, answer.text)
    assert (await routing.get("/api/partner-teams/team-ours/inbox", headers=theirs)).status_code == 404

    ours = await routing.post(
        f"/api/partner-teams/team-ours/cases/{complaint_id}/acknowledge",
        headers=token(routing, "partner", "pat-1", team="team-ours"),
    )
    assert ours.status_code == 200 and ours.json()["acknowledged"], ours.text


async def test_a_plain_agent_cannot_administer_the_roster_and_only_an_admin_grants_restricted_teams(routing):
    admin, supervisor = token(routing, "admin", "adm-1"), token(routing, "supervisor", "sup-ola")
    assert (await routing.post("/api/partner-teams", json=SECURITY, headers=admin)).status_code == 201
    await register(routing, "agt-ana", ["other"])
    await register(routing, "agt-ben", ["other"])
    await make_available(routing, "agt-ben")
    ana = token(routing, "agent", "agt-ana")
    roster_before = len(await logged(routing, ROSTER_STREAM))
    me = {"agent_id": "agt-ana", "name": "Ana", "skills": ["other"], "languages": ["en"], "capacity": 1}

    refused = [
        await routing.put("/api/agents/agt-ben/availability", json={"availability": "offline"}, headers=ana),
        await routing.post("/api/agents", json={**me, "teams": ["team-account-security"]}, headers=ana),
        await routing.post("/api/agents", json={**me, "teams": ["supervisors"]}, headers=ana),
        await routing.post("/api/agents", json={**me, "capacity": 40}, headers=ana),
        await routing.post("/api/partner-teams", json={**SECURITY, "team_id": "team-mine"}, headers=ana),
        await routing.post("/api/agents", json={**me, "teams": ["team-account-security"]}, headers=supervisor),
        await routing.post("/api/partner-teams", json={**SECURITY, "name": "Renamed"}, headers=supervisor),
    ]
    too_big = await routing.post("/api/agents", json={**me, "capacity": 10_000}, headers=supervisor)

    assert [r.status_code for r in refused] == [403] * 7, [r.text for r in refused]
    assert all(r.json()["message"].startswith("Authorization: ") for r in refused)
    assert "admin only" in refused[5].json()["message"]
    assert too_big.status_code == 422 and "capacity" in too_big.json()["message"]
    assert len(await logged(routing, ROSTER_STREAM)) == roster_before, "nothing was written"

    own = await routing.put("/api/agents/agt-ana/availability", json={"availability": "available"}, headers=ana)
    offline = await routing.put(
        "/api/agents/agt-ben/availability", json={"availability": "offline"}, headers=supervisor
    )
    granted = await routing.post("/api/agents", json={**me, "teams": ["team-account-security"]}, headers=admin)
    assert (own.status_code, offline.status_code, granted.status_code) == (200, 200, 201)
    assert granted.json()["teams"] == ["team-account-security"]
