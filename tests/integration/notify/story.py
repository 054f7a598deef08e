"""Small builders of the events notify hears, for the notify tests."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime

from contracts.intake import Category, Channel, Complainant, ComplaintFiled, CustomerMessageReceived
from contracts.routing import ComplaintResolved
from services.notify.domain import CLOSURE, ClosureLoop, closure_stream
from tests.integration.support import events_on, wait_for


def someone() -> tuple[str, str]:
    """A new complaint id and a complainant address no other test uses."""
    tag = uuid.uuid4().hex[:10]
    return f"c-{tag}", f"sam.{tag}@example.com"


def filed(complaint_id: str, email: str | None, phone: str | None = None, **complainant) -> ComplaintFiled:
    return ComplaintFiled(
        complaint_id=complaint_id,
        category=complainant.pop("category", Category.DELIVERY_DRIVER_CONDUCT),
        description="The driver reversed onto the pavement and nearly hit me.",
        channel=Channel.WEB,
        complainant=Complainant(email=email, phone=phone, display_name="Sam Okafor", **complainant),
        filed_at=datetime.now(UTC),
    )


def resolved(complaint_id: str) -> ComplaintResolved:
    return ComplaintResolved(
        complaint_id=complaint_id,
        agent_id="agt-0042",
        recap="We reported the driver to our regional logistics partner.",
        next_steps=["The partner team will tell you what they did within 5 working days."],
        resolved_at=datetime.now(UTC),
    )


def reply(complaint_id: str, sender: str, text: str, in_reply_to: str | None = None) -> CustomerMessageReceived:
    return CustomerMessageReceived(
        complaint_id=complaint_id,
        message_id=f"<{uuid.uuid4().hex}@mail.example.com>",
        channel=Channel.EMAIL,
        text=text,
        sender=sender,
        in_reply_to=in_reply_to,
        subject_line="Re: Is your complaint closed?",
        received_at=datetime.now(UTC),
    )


async def closure(notify, complaint_id: str) -> ClosureLoop:
    events, _ = await notify.store.load(closure_stream(complaint_id))
    return CLOSURE.fold(events)


async def stream_types(notify, stream: str) -> list[str]:
    events, _ = await notify.store.load(stream)
    return [type(e).__name__ for e in events]


async def mail_to(mailbox, address: str, count: int = 1, timeout: float = 30, notify=None) -> list[dict]:
    """The first ``count`` messages the SMTP server received for ``address``."""

    async def arrived():
        found = await asyncio.to_thread(mailbox.messages, address)
        return found if len(found) >= count else None

    try:
        return await wait_for(arrived, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nnotify's state: {await _state(notify, address)}") from None


async def _state(notify, address: str) -> str:
    """What notify knows about an address, for a failure message."""
    if notify is None:
        return "(not given)"
    from services.notify.ledger import ledger_stream

    ledger = await stream_types(notify, ledger_stream(address))
    jobs = await notify.store.db["outgoing"].find({}).to_list()
    pending = await notify.store.pending.find({}).to_list()
    inbox = await notify.store.db["inbox"].find({}, {"envelope.type": 1, "handled": 1, "position": 1}).to_list()
    parked = await notify.store.db["parked"].find({}, {"data": 0}).to_list()
    commits = await notify.store.commits.find({}, {"events.data": 0}).sort("position", 1).to_list()
    commits = [
        (c["_id"], c["commit_id"][:8], c["position"], [e["type"].split(".")[-2] for e in c["events"]]) for c in commits
    ]
    return f"ledger={ledger} outgoing={jobs} pending={pending} inbox={inbox} parked={parked} commits={commits}"


def link(text: str, label: str) -> str:
    """The URL printed after ``label`` in the text part of the closure email."""
    return re.search(rf"{re.escape(label)}\s+(\S+)", text).group(1)


def published_about(bootstrap: str, key: str, count: int, timeout: float = 30) -> list:
    """The first ``count`` events notify published on its topic keyed by ``key``."""
    from contracts import TOPICS

    return events_on(bootstrap, TOPICS["notify"], key, count, timeout)
