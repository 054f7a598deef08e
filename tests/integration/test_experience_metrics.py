"""The customer-experience figures of a known week of cases, through the real intake service on the
real broker and store: complaints filed and calls asked for on intake's API, a proactive case opened
from the carrier's alert, and the other services' public events on their own topics as those
services publish them, at times the test chooses, so that every figure is known to the second.
Then ``complaints rebuild experience_facts`` and the same figures again. A second test plays a call
and a transfer through the real routing service too (its API, its events), where times are the
wall clock's and the figures are checked against what routing published.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts import TOPICS
from contracts.carrier import ShipmentExceptionDetected
from contracts.envelope import Envelope, Event, to_kafka
from contracts.notify import (
    ClosureConfirmationRequested,
    ComplaintClosedUnconfirmed,
    ComplaintReopened,
    CustomerConfirmedClosed,
    NotificationSuppressed,
)
from contracts.routing import (
    AgentAssigned,
    CallConnected,
    ComplaintResolved,
    Escalated,
    HandoffBrief,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    TransferredToPartner,
)
from services.intake.projections import ExperienceFacts
from services.intake.settings import IntakeSettings
from services.kernel import auth
from tests.integration.support import ROOT, intake_beside, produce_raw, skip_history, wait_for

pytestmark = pytest.mark.integration

TEAM = "team-logistics-south"


def bearer(key: str, **claims) -> dict:
    return {"Authorization": f"Bearer {auth.sign(claims, key, timedelta(minutes=10))}"}


def put_on_topic(bootstrap: str, service: str, *events: Event) -> None:
    """Produce events as ``service`` publishes them: CloudEvents keyed by their subject."""
    now = datetime.now(UTC)
    produce_raw(
        bootstrap,
        TOPICS[service],
        [
            to_kafka(
                Envelope(
                    id=str(uuid.uuid4()),
                    type=e.ce_type(),
                    source=f"/services/{service}",
                    subject=e.subject(),
                    time=now,
                    correlationid=str(uuid.uuid4()),
                    data=e.model_dump(mode="json"),
                )
            )
            for e in events
        ],
    )


@pytest.fixture
async def intake(settings, order_system_url):
    async with intake_beside(settings, order_system_url) as app:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://intake", timeout=30
        ) as client:
            client.config = app.state.services.settings
            client.facts = ExperienceFacts(app.state.services.runtime.store.db)
            yield client


class Week:
    """The cases of the test, filed on intake's API, and what the other services did with them."""

    def __init__(self, intake) -> None:
        self.intake, self.bootstrap = intake, intake.config.kafka_bootstrap_servers

    async def file(self, channel: str = "web", category: str = "late_delivery", call: bool = False) -> dict:
        customer = f"cust-{uuid.uuid4().hex[:8]}"
        who = bearer(self.intake.config.signing_key, sub=customer, role="customer")
        filed = await self.intake.post(
            "/api/complaints",
            headers=who,
            json={
                "category": category,
                "description": "It has not come.",
                "channel": channel,
                "complainant": {"email": f"{customer}@example.com"},
            },
        )
        assert filed.status_code == 201, filed.text
        cid = filed.json()["complaint_id"]
        if call:
            asked = await self.intake.post(
                f"/api/complaints/{cid}/callback", headers=who, json={"phone": "+447700900123"}
            )
            assert asked.status_code == 202, asked.text
        return await self.facts(cid, lambda f: bool(f["callbacks"]) == call)

    async def facts(self, key: str, ready=lambda f: True) -> dict:
        async def found():
            facts = await self.intake.facts.get(key)
            return facts if facts and ready(facts) else None

        return await wait_for(found, timeout=60)

    def routing(self, *events: Event) -> None:
        put_on_topic(self.bootstrap, "routing", *events)

    def notify(self, *events: Event) -> None:
        put_on_topic(self.bootstrap, "notify", *events)


def at(facts: dict, **delta) -> datetime:
    return datetime.fromisoformat(facts["filed_at"]) + timedelta(**delta)


def resolved(case: dict, by: str, **delta) -> ComplaintResolved:
    return ComplaintResolved(complaint_id=case["_id"], agent_id=by, recap="Done.", resolved_at=at(case, **delta))


def asked(case: dict, **delta) -> ClosureConfirmationRequested:
    return ClosureConfirmationRequested(
        complaint_id=case["_id"],
        message_id=f"<{case['_id']}@mail>",
        to="sam@example.com",
        recap="Done.",
        requested_at=at(case, **delta),
        yes_url_expires_at=at(case, days=7),
    )


def transferred(case: dict, **delta) -> TransferredToPartner:
    return TransferredToPartner(
        complaint_id=case["_id"],
        team_id=TEAM,
        by_agent_id="agt-ana",
        brief=HandoffBrief(customer_asks="The driver.", tried="Route.", promised="Answer."),
        transferred_at=at(case, **delta),
        sla_due_at=at(case, **delta) + timedelta(hours=1),
    )


async def a_known_mix_of_cases(week: Week) -> dict[str, dict]:
    """Seven complaints and a proactive case; the comments say what each adds to the figures."""
    cases = {}
    # two calls connected 20 s and 40 s after "call me", resolved on the call, confirmed
    for name, wait in (("called-1", 20), ("called-2", 40)):
        case = cases[name] = await week.file(call=True)
        ((cb, req),) = ((k, datetime.fromisoformat(v["requested_at"])) for k, v in case["callbacks"].items())
        week.routing(
            AgentAssigned(
                complaint_id=case["_id"],
                agent_id="agt-ana",
                callback_id=cb,
                assigned_at=req + timedelta(seconds=1),
                reason="idle",
            ),
            CallConnected(
                complaint_id=case["_id"], callback_id=cb, agent_id="agt-ana", connected_at=req + timedelta(seconds=wait)
            ),
            resolved(case, "agt-ana", minutes=10),
        )
        week.notify(
            asked(case, minutes=11),
            CustomerConfirmedClosed(complaint_id=case["_id"], via="link", confirmed_at=at(case, minutes=30)),
        )
    # written, taken after 10 min, resolved, disputed: reopened two days after the resolution
    case = cases["disputed-soon"] = await week.file(channel="email")
    week.routing(
        AgentAssigned(complaint_id=case["_id"], agent_id="agt-bo", assigned_at=at(case, minutes=10), reason="skill"),
        resolved(case, "agt-bo", minutes=30),
    )
    week.notify(
        asked(case, minutes=31), ComplaintReopened(complaint_id=case["_id"], via="page", reopened_at=at(case, days=2))
    )
    # written, taken after 30 min, resolved, disputed 12 days after the resolution
    case = cases["disputed-late"] = await week.file(channel="email")
    week.routing(
        AgentAssigned(complaint_id=case["_id"], agent_id="agt-bo", assigned_at=at(case, minutes=30), reason="skill"),
        resolved(case, "agt-bo", minutes=40),
    )
    week.notify(
        asked(case, minutes=41), ComplaintReopened(complaint_id=case["_id"], via="link", reopened_at=at(case, days=12))
    )
    # a social post, taken after 5 min, resolved, never answered
    case = cases["unanswered"] = await week.file(channel="social")
    week.routing(
        AgentAssigned(complaint_id=case["_id"], agent_id="agt-cy", assigned_at=at(case, minutes=5), reason="skill"),
        resolved(case, "agt-cy", minutes=20),
    )
    week.notify(
        asked(case, minutes=21), ComplaintClosedUnconfirmed(complaint_id=case["_id"], closed_at=at(case, days=7))
    )
    # transferred; the partner acknowledged 90 min later (due after 60) and answered after 100:
    # late twice, escalated for it, then resolved
    case = cases["partner-late"] = await week.file(category="delivery_driver_conduct")
    week.routing(
        AgentAssigned(complaint_id=case["_id"], agent_id="agt-ana", assigned_at=at(case, minutes=1), reason="skill"),
        transferred(case, minutes=2),
        Escalated(complaint_id=case["_id"], reason="sla_breach", detail="Silent.", escalated_at=at(case, minutes=62)),
        PartnerAcknowledged(complaint_id=case["_id"], team_id=TEAM, by="pat-1", acknowledged_at=at(case, minutes=92)),
        PartnerOutcomeRecorded(
            complaint_id=case["_id"], team_id=TEAM, outcome_for_customer="Retrained.", recorded_at=at(case, minutes=102)
        ),
        resolved(case, "agt-ana", minutes=110),
    )
    # a locked-out seller: the loop guard held a "log in" email back and asked a human
    case = cases["loop"] = await week.file(category="account_locked")
    week.notify(
        NotificationSuppressed(
            complaint_id=case["_id"],
            template="seller_login_reminder",
            channel="email",
            reason="cannot_act",
            alternative="human",
            suppressed_at=at(case, minutes=3),
        )
    )
    week.routing(
        Escalated(
            complaint_id=case["_id"],
            reason="notification_blocked",
            detail="Locked out.",
            escalated_at=at(case, minutes=4),
        )
    )
    # the carrier's alert about an order: intake opens a proactive case; nobody has taken it yet
    order = f"114-{uuid.uuid4().hex[:7]}"
    put_on_topic(
        week.bootstrap,
        "carrier",
        ShipmentExceptionDetected(
            order_id=order,
            customer_id="cust-2002",
            carrier="ups",
            tracking_number="1Z999AA10123456795",
            status="delayed",
            reason="weather",
            carrier_status="Weather.",
            can_intercept=False,
            detected_at=datetime.now(UTC),
        ),
    )

    async def proactive():
        found = [f async for f in week.intake.facts.views.find({"channel": "proactive"})]
        return found[0] if found else None

    cases["proactive"] = await wait_for(proactive, timeout=60)
    return cases


async def settled(week: Week, cases: dict[str, dict]) -> None:
    """Wait until the read model holds every event the test put on the topics."""
    expected = {
        "called-1": 5,
        "called-2": 5,
        "disputed-soon": 5,
        "disputed-late": 5,
        "unanswered": 5,
        "partner-late": 7,
        "loop": 3,
    }  # filing (+ callback) and the events above
    for name, count in expected.items():
        await week.facts(cases[name]["_id"], lambda f, count=count: len(f["applied"]) >= count)


EXPECTED = {
    "cases": 8,
    "proactive": 1,
    "call_me_to_connected_s": {"count": 2, "p50": 20.0, "p90": 40.0, "p99": 40.0},
    # first human: 20 s, 40 s (calls), 5, 10, 30 min (written), 1 min (partner-late); loop and proactive: none
    "to_first_human_s": {"count": 6, "p50": 60.0, "p90": 1800.0, "p99": 1800.0},
    "resolved": 6,
    "first_contact_resolved": 3,
    "first_contact_resolution_rate": 0.5,
    "contacts_per_resolution": round(8 / 6, 4),  # one each, and a "no" each for the two disputed
    "closure_asked": 5,
    "confirmed": 2,
    "disputed": 2,
    "unanswered": 1,
    "confirmed_rate": 0.4,
    "disputed_rate": 0.4,
    "unanswered_rate": 0.2,
    "reopened_7d": 1,
    "reopened_30d": 2,
    "reopen_rate_7d": 0.1667,
    "reopen_rate_30d": 0.3333,
    "partner_acknowledged_on_time": 0,
    "partner_acknowledged_late": 1,
    "partner_outcome_on_time": 0,
    "partner_outcome_late": 1,
    "held_back": 1,
    "escalated_repeated_contacts": 0,
    "escalated_notification_blocked": 1,
    "escalated_sla_breach": 1,
}


def complaints(config: IntakeSettings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MONGODB_URL": config.mongodb_url,
        "KAFKA_BOOTSTRAP_SERVERS": config.kafka_bootstrap_servers,
        "MONGODB_DATABASE": config.database_name,
        "SERVICE_NAME": config.service_name,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.kernel.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_known_week_of_cases_gives_each_figure_exactly_and_a_rebuild_gives_the_same(intake):
    week = Week(intake)
    cases = await a_known_mix_of_cases(week)
    await settled(week, cases)
    supervisor = bearer(intake.config.signing_key, sub="sup-maya", role="supervisor")

    answer = (await intake.get("/api/metrics/figures?period=week&days=1", headers=supervisor)).json()
    assert [row["group"] for row in answer["rows"]] == [None], answer  # (a run across midnight UTC fails here)
    assert answer["rows"][0]["figures"] == EXPECTED

    by_team = (await intake.get("/api/metrics/figures?period=week&days=1&by=team", headers=supervisor)).json()
    teams = {row["group"]: row["figures"] for row in by_team["rows"]}
    assert (
        set(teams) == {"(none)", TEAM} and teams[TEAM]["cases"] == 1 and teams[TEAM]["partner_acknowledged_late"] == 1
    )
    by_channel = (await intake.get("/api/metrics/figures?period=week&days=1&by=channel", headers=supervisor)).json()
    channels = {row["group"]: row["figures"]["to_first_human_s"]["p50"] for row in by_channel["rows"]}
    # web: calls connected 20 s and 40 s after "call me" (asked a moment after filing), partner-late's 60 s
    called = cases["called-2"]
    asked_at = datetime.fromisoformat(next(iter(called["callbacks"].values()))["requested_at"])
    web = round((asked_at + timedelta(seconds=40) - at(called)).total_seconds(), 3)
    assert channels == {"email": 600.0, "proactive": None, "social": 300.0, "web": web}

    breaches = (await intake.get("/api/metrics/breaches?days=1", headers=supervisor)).json()["breaches"]
    kinds = {(b["complaint_id"], b["kind"]) for b in breaches}
    assert kinds == {
        (cases["loop"]["_id"], "waiting_for_a_human"),
        (cases["proactive"]["_id"], "waiting_for_a_human"),
        (cases["disputed-soon"]["_id"], "disputed_closure"),
        (cases["disputed-late"]["_id"], "disputed_closure"),
    }

    scraped = (await intake.get("/metrics")).text  # the same figures for Prometheus
    assert 'complaints_experience_count{figure="cases",window_days="28"} 8.0' in scraped
    assert 'complaints_experience_ratio{figure="confirmed",window_days="28"} 0.4' in scraped
    assert 'complaints_experience_call_me_to_connected_seconds_bucket{le="30.0",window_days="28"} 1.0' in scraped
    assert 'complaints_experience_call_me_to_connected_seconds_count{window_days="28"} 2.0' in scraped
    assert (
        'complaints_experience_partner_transfers{step="acknowledgement",team="team-logistics-south",'
        'timing="late",window_days="28"} 1.0'
    ) in scraped

    printed = await asyncio.to_thread(complaints, intake.config, "metrics", "--period", "week", "--days", "1", "--json")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["rows"] == answer["rows"]
    table = await asyncio.to_thread(complaints, intake.config, "metrics", "--period", "week", "--days", "1")
    assert "first_contact_resolution_rate" in table.stdout and "50.0%" in table.stdout, table.stdout

    # The read model dropped and rebuilt from the log alone gives the same figures. (The service
    # keeps running: nothing new arrives meanwhile, so its follower has nothing to apply.)
    rebuilt = await asyncio.to_thread(
        complaints,
        intake.config,
        "rebuild",
        "experience_facts",
        "--projections",
        "services.intake.projections:PROJECTIONS",
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = (await intake.get("/api/metrics/figures?period=week&days=1", headers=supervisor)).json()
    assert again["rows"] == answer["rows"]


@pytest.mark.parametrize(
    "claims, status",
    [
        (None, 401),
        ({"sub": "agt-ana", "role": "agent"}, 403),
        ({"sub": "pat-1", "role": "partner", "team": TEAM}, 403),
        ({"sub": "adm-1", "role": "admin"}, 403),
        ({"sub": "cust-1", "role": "customer"}, 403),
    ],
)
async def test_only_supervisors_read_the_metrics_and_others_get_problem_details(intake, claims, status):
    headers = bearer(intake.config.signing_key, **claims) if claims else {}
    for path in ("/api/metrics/figures", "/api/metrics/breaches"):
        answer = await intake.get(path, headers=headers)
        assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"


@pytest.fixture
async def intake_and_routing(intake, settings, order_system_url):
    """The real routing app beside intake, in its own group and database, its timers idle."""
    from services.routing.app import create_app as create_routing
    from services.routing.settings import RoutingSettings

    config = RoutingSettings(
        **{
            **settings.model_dump(),
            "service_name": f"routing-{settings.service_name}",
            "mongodb_database": f"{settings.database_name}_routing",
            "order_system_url": order_system_url,
            "timer_interval_s": 3600,
        }
    )
    for topic in TOPICS.values():
        await asyncio.to_thread(skip_history, config.kafka_bootstrap_servers, config.consumer_group, topic)
    app = create_routing(config)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://routing", timeout=30
        ) as routing:
            yield intake, routing
            db = app.state.services.runtime.store.db
            await db.client.drop_database(db.name)


async def test_a_call_and_a_transfer_played_through_real_routing_count_as_routing_s_events_say(intake_and_routing):
    intake, routing = intake_and_routing
    key = intake.config.signing_key
    admin, boss = bearer(key, sub="adm-1", role="admin"), bearer(key, sub="sup-maya", role="supervisor")
    agent, partner = bearer(key, sub="agt-real", role="agent"), bearer(key, sub="pat-1", role="partner", team=TEAM)
    for path, body in (
        (
            "/api/partner-teams",
            {"team_id": TEAM, "name": "South", "categories": ["late_delivery"], "response_sla_minutes": 240},
        ),
        (
            "/api/agents",
            {
                "agent_id": "agt-real",
                "name": "Real",
                "skills": ["late_delivery"],
                "languages": ["en-GB"],
                "capacity": 3,
            },
        ),
    ):
        assert (answer := await routing.post(path, headers=admin, json=body)).status_code == 201, answer.text
    assert (
        await routing.put("/api/agents/agt-real/availability", headers=admin, json={"availability": "available"})
    ).status_code == 200
    week = Week(intake)

    # a call: "call me", dispatched to the agent, connected, resolved on the call
    called = await week.file(call=True)
    ((callback_id, callback),) = called["callbacks"].items()

    async def dispatched():
        case = (await routing.get(f"/api/cases/{called['_id']}", headers=boss)).json()
        return [c for c in case.get("callbacks", []) if c["callback_id"] == callback_id and c.get("agent_id")]

    await wait_for(dispatched, timeout=60)
    connected = await routing.post(f"/api/cases/{called['_id']}/callbacks/{callback_id}/connected", headers=agent)
    assert connected.status_code == 200, connected.text
    resolved_call = await routing.post(f"/api/cases/{called['_id']}/resolve", headers=agent, json={"recap": "Sorted."})
    assert resolved_call.status_code == 200, resolved_call.text

    # written: taken by the agent, transferred with a brief, acknowledged and answered by the team, resolved
    written = await week.file()

    async def held():
        queue = (await routing.get("/api/agents/agt-real/queue", headers=boss)).json()
        return written["_id"] in {c["complaint_id"] for c in queue["cases"]}

    await wait_for(held, timeout=60)
    moved = await routing.post(
        f"/api/cases/{written['_id']}/transfer",
        headers=agent,
        json={
            "team_id": TEAM,
            "brief": {"customer_asks": "Where is it?", "tried": "Tracking.", "promised": "An answer."},
        },
    )
    assert moved.status_code == 200, moved.text
    for step, body in (("acknowledge", None), ("outcome", {"outcome_for_customer": "Found at the depot."})):
        answer = await routing.post(
            f"/api/partner-teams/{TEAM}/cases/{written['_id']}/{step}",
            headers=partner,
            **({"json": body} if body else {}),
        )
        assert answer.status_code == 200, answer.text
    assert (
        await routing.post(f"/api/cases/{written['_id']}/resolve", headers=boss, json={"recap": "Redelivered."})
    ).status_code == 200

    facts = {
        name: await week.facts(
            case["_id"], lambda f: f["resolved_at"] is not None and all(t["outcome_at"] for t in f["transfers"])
        )
        for name, case in (("called", called), ("written", written))
    }
    figures = (await intake.get("/api/metrics/figures?period=window&days=1", headers=boss)).json()["rows"][0]["figures"]
    call = facts["called"]["callbacks"][callback_id]
    waited = round(
        (
            datetime.fromisoformat(call["connected_at"]) - datetime.fromisoformat(callback["requested_at"])
        ).total_seconds(),
        3,
    )
    assert figures["call_me_to_connected_s"] == {"count": 1, "p50": waited, "p90": waited, "p99": waited}
    assert (figures["cases"], figures["resolved"], figures["first_contact_resolved"]) == (2, 2, 1)
    assert (figures["partner_acknowledged_on_time"], figures["partner_acknowledged_late"]) == (1, 0)
    assert (figures["partner_outcome_on_time"], figures["partner_outcome_late"]) == (1, 0)
    assert figures["to_first_human_s"]["count"] == 2 and figures["contacts_per_resolution"] == 1.0
    agents = {
        r["group"]: r["figures"]["resolved"]
        for r in (await intake.get("/api/metrics/figures?period=window&days=1&by=agent", headers=boss)).json()["rows"]
    }
    assert agents == {"agt-real": 1, "sup-maya": 1}
