"""A generated week of complaint traffic, as the four services' public events, for the supervisors'
dashboard: `make up DEMO=week` seeds it into the local stack; the dashboard's browser test uses it too.

Intake's own events (filings, "call me") are appended to intake's event log, as intake itself
appends them (a service does not consume its own topic back); the other services' events go on
their topics as those services publish them. The week's filings then reach routing and notify
like any other: expect queued work and receipts in the mailbox of a demo stack.

Every event carries its own time in the past week, so the figures spread over seven days; the mix
is seeded (the same seed gives the same figures; the complaint ids are new each run): calls connected within seconds to minutes, written
cases taken within hours, transfers to three partner teams (one of them often late), closures
mostly confirmed, some disputed and reopened, some unanswered, a loop held back now and then, and
a few proactive cases from carrier alerts.

    python -m tools.demo_week --kafka 127.0.0.1:9092 --mongodb-url mongodb://127.0.0.1:27017/ [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer
from pymongo import AsyncMongoClient

from contracts import TOPICS, registry
from contracts.envelope import Envelope, Event, to_kafka
from contracts.intake import CallbackRequested, Category, Channel, Complainant, ComplaintFiled
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
from services.intake.domain import complaint_stream
from services.kernel.eventstore import Cause, EventStore
from services.kernel.kafka import client_config
from services.kernel.settings import KernelSettings

AGENTS = ("agt-ana", "agt-priya", "agt-omar", "agt-sec-lee")
#: Teams with their SLA in minutes and how often they answer late.
TEAMS = {
    "team-logistics-uk-south": (240, 0.15),
    "team-seller-support": (480, 0.05),
    "team-account-security": (120, 0.35),
}
CHANNELS = (Channel.WEB, Channel.WEB, Channel.WEB, Channel.EMAIL, Channel.EMAIL, Channel.SOCIAL, Channel.PHONE)


def week_of_traffic(now: datetime, seed: int = 7, per_day: int = 40) -> list[tuple[str, Event]]:
    """(owning service, event) for a week ending at ``now``, in time order; nothing after ``now``."""
    rng = random.Random(seed)
    found: list[tuple[datetime, str, Event]] = []
    start = (now - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(8):
        day_start = start + timedelta(days=day)
        # Office hours (7:00-20:00); today before now, however early it is: the week has eight days.
        elapsed = int((now - day_start).total_seconds())
        earliest, latest = (7 * 3600, 20 * 3600) if elapsed >= 20 * 3600 else (0, elapsed)
        for _ in range(rng.randint(per_day * 3 // 4, per_day * 5 // 4)):
            filed = day_start + timedelta(seconds=rng.randint(earliest, latest))
            found += [(t, s, e) for t, s, e in _case(rng, filed) if t <= now]
    return [(service, event) for _, service, event in sorted(found, key=lambda x: x[0])]


def _case(rng: random.Random, filed: datetime) -> Iterator[tuple[datetime, str, Event]]:
    cid = str(uuid.uuid4())  # new ids each run: seeding twice adds a second week, never a conflict
    proactive = rng.random() < 0.05
    channel = Channel.PROACTIVE if proactive else rng.choice(CHANNELS)
    category = rng.choice(list(Category))
    yield (
        filed,
        "intake",
        ComplaintFiled(
            complaint_id=cid,
            category=category,
            description="Demo traffic.",
            channel=channel,
            filed_at=filed,
            complainant=Complainant(email=f"demo.{cid[:8]}@example.com"),
        ),
    )
    agent = rng.choice(AGENTS)
    if channel in (Channel.WEB, Channel.PHONE) and rng.random() < 0.7:  # "call me"
        cb = f"cb-{cid[:12]}"
        yield (
            filed,
            "intake",
            CallbackRequested(complaint_id=cid, callback_id=cb, phone="+447700900123", requested_at=filed),
        )
        human = filed + timedelta(seconds=rng.lognormvariate(4.0, 0.9))
        yield (
            human - timedelta(seconds=1),
            "routing",
            AgentAssigned(
                complaint_id=cid,
                agent_id=agent,
                callback_id=cb,
                assigned_at=human - timedelta(seconds=1),
                reason="idle",
            ),
        )
        yield human, "routing", CallConnected(complaint_id=cid, callback_id=cb, agent_id=agent, connected_at=human)
    elif rng.random() < 0.93:  # written work, taken within hours (a few never yet)
        human = filed + timedelta(minutes=rng.lognormvariate(3.5, 1.0))
        yield human, "routing", AgentAssigned(complaint_id=cid, agent_id=agent, assigned_at=human, reason="skill")
    else:
        return
    done = human + timedelta(minutes=rng.randint(5, 90))
    if rng.random() < 0.3:  # a partner team must act
        team = rng.choice(list(TEAMS))
        sla, late = TEAMS[team]
        due = done + timedelta(minutes=sla)
        yield (
            done,
            "routing",
            TransferredToPartner(
                complaint_id=cid,
                team_id=team,
                by_agent_id=agent,
                transferred_at=done,
                sla_due_at=due,
                brief=HandoffBrief(customer_asks="Demo.", tried="Demo.", promised="An answer."),
            ),
        )
        acked = done + timedelta(
            minutes=sla * (rng.uniform(1.1, 2.0) if rng.random() < late else rng.uniform(0.1, 0.9))
        )
        yield (
            acked,
            "routing",
            PartnerAcknowledged(complaint_id=cid, team_id=team, by="pat-demo", acknowledged_at=acked),
        )
        if acked > due:
            yield due, "routing", Escalated(complaint_id=cid, reason="sla_breach", detail="Silent.", escalated_at=due)
        outcome = acked + timedelta(minutes=rng.randint(10, 240))
        yield (
            outcome,
            "routing",
            PartnerOutcomeRecorded(complaint_id=cid, team_id=team, outcome_for_customer="Done.", recorded_at=outcome),
        )
        done = outcome + timedelta(minutes=5)
    if category == Category.ACCOUNT_LOCKED and rng.random() < 0.5:  # the loop guard steps in
        held = filed + timedelta(hours=rng.randint(1, 20))
        yield (
            held,
            "notify",
            NotificationSuppressed(
                complaint_id=cid,
                template="seller_login_reminder",
                channel="email",
                reason="cannot_act",
                alternative="human",
                suppressed_at=held,
            ),
        )
        yield (
            held,
            "routing",
            Escalated(complaint_id=cid, reason="notification_blocked", detail="Locked out.", escalated_at=held),
        )
    if rng.random() < 0.06:
        again = filed + timedelta(hours=rng.randint(2, 30))
        yield (
            again,
            "routing",
            Escalated(complaint_id=cid, reason="repeated_contacts", detail="Wrote again.", escalated_at=again),
        )
    yield done, "routing", ComplaintResolved(complaint_id=cid, agent_id=agent, recap="Done.", resolved_at=done)
    asked = done + timedelta(minutes=1)
    yield (
        asked,
        "notify",
        ClosureConfirmationRequested(
            complaint_id=cid,
            message_id=f"<{cid}@demo>",
            to=f"demo.{cid[:8]}@example.com",
            recap="Done.",
            requested_at=asked,
            yes_url_expires_at=asked + timedelta(days=7),
        ),
    )
    answer, later = rng.random(), asked + timedelta(hours=rng.lognormvariate(1.5, 1.0))
    if answer < 0.72:
        yield later, "notify", CustomerConfirmedClosed(complaint_id=cid, via="link", confirmed_at=later)
    elif answer < 0.84:
        yield later, "notify", ComplaintReopened(complaint_id=cid, via="link", reopened_at=later)
    else:
        gone = asked + timedelta(days=3)
        yield gone, "notify", ComplaintClosedUnconfirmed(complaint_id=cid, closed_at=gone)


async def append_to_intake(mongodb_url: str, database: str, traffic: list[tuple[str, Event]]) -> int:
    """Intake's events of the week, appended to intake's log one commit each (its follower
    publishes them and projects them); returns how many."""
    client = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        store, versions = EventStore(client[database], "/services/intake", registry), {}
        for service, event in traffic:
            if service != "intake":
                continue
            stream = complaint_stream(event.complaint_id)
            cause = Cause.of_request(
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo:{stream}:{versions.get(stream, 0)}")), "demo_week"
            )
            await store.append(stream, versions.get(stream, 0), [event], cause)
            versions[stream] = versions.get(stream, 0) + 1
        return sum(versions.values())
    finally:
        await client.close()


def publish(bootstrap: str, traffic: list[tuple[str, Event]]) -> int:
    """Put the other services' events on their topics as those services publish them (CloudEvents
    keyed by subject); returns how many."""
    # connected as the services connect (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*: the admin's on an --auth stack)
    producer = Producer(
        {**client_config(KernelSettings(kafka_bootstrap_servers=bootstrap)), "enable.idempotence": True, "linger.ms": 5}
    )
    traffic = [(service, event) for service, event in traffic if service != "intake"]
    for service, event in traffic:
        envelope = Envelope(
            id=str(uuid.uuid4()),
            type=event.ce_type(),
            source=f"/services/{service}",
            subject=event.subject(),
            time=datetime.now(UTC),
            correlationid=str(uuid.uuid4()),
            data=event.model_dump(mode="json"),
        )
        key, value, headers = to_kafka(envelope)
        producer.produce(TOPICS[service], key=key, value=value, headers=headers)
        producer.poll(0)
    assert producer.flush(30) == 0, "the broker did not take every demo event"
    return len(traffic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--mongodb-url", default="mongodb://127.0.0.1:27017/")
    parser.add_argument("--intake-database", default="complaints_intake")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-day", type=int, default=40)
    args = parser.parse_args()
    traffic = week_of_traffic(datetime.now(UTC), args.seed, args.per_day)
    appended = asyncio.run(append_to_intake(args.mongodb_url, args.intake_database, traffic))
    published = publish(args.kafka, traffic)
    print(f"demo week: {appended} events appended to intake's log, {published} on the other services' topics")


if __name__ == "__main__":
    main()
