"""Notify's work lists, built from its log: messages still to deliver, and timers still to watch.

Both are fed by the log follower, so a crash between deciding and doing loses nothing: what was
queued is in the log, and the follower applies it to ``outgoing`` before it clears the entry.
A rebuild replays the log and leaves exactly what is still owed (sent messages are removed).
Insert-only and delete-only here: the courier and the ticker delete too, never in conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Envelope, Event
from contracts.notify import (
    CallPlaced,
    ClosureConfirmationRequested,
    ComplaintClosedUnconfirmed,
    ComplaintReopened,
    CustomerConfirmedClosed,
    DialOutRequested,
    MessageQueued,
    MessageSent,
    NotificationFailed,
)
from services.kernel.projections import DocumentProjection


async def _insert(collection, doc: dict) -> None:
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        pass  # applied before (an entry is applied again after a crash)


class Outgoing(DocumentProjection):
    """One document per queued message not yet sent or given up: the courier's work."""

    name = "outgoing"
    events = (MessageQueued, MessageSent, NotificationFailed)

    def __init__(self, db: AsyncDatabase, wake: Callable[[], None] = lambda: None) -> None:
        super().__init__(db)
        self.wake = wake

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if isinstance(event, MessageQueued):
            await _insert(
                self.views,
                {
                    "_id": event.message_id,
                    "address": event.address,
                    "attempts": 0,
                    "due_at": datetime.now(UTC),
                    "queued": event.model_dump(mode="json"),
                },
            )
            self.wake()
        elif isinstance(event, (MessageSent, NotificationFailed)):
            await self.views.delete_one({"_id": event.message_id})


class Agenda(DocumentProjection):
    """Open closure questions (``closure:<complaint>``) and dial-outs (``dialout:<callback>``)."""

    name = "agenda"
    events = (
        ClosureConfirmationRequested,
        CustomerConfirmedClosed,
        ComplaintReopened,
        ComplaintClosedUnconfirmed,
        DialOutRequested,
        CallPlaced,
    )

    async def apply(self, envelope: Envelope, event: Event) -> None:
        match event:
            case ClosureConfirmationRequested(reminder=False):
                await self.views.replace_one(
                    {"_id": f"closure:{event.complaint_id}"}, {"since": event.requested_at}, upsert=True
                )
            case ClosureConfirmationRequested(reminder=True):
                # What is due next is the close: the ticker need not look at it before then.
                await self.views.update_one({"_id": f"closure:{event.complaint_id}"}, {"$set": {"reminded": True}})
            case CustomerConfirmedClosed() | ComplaintReopened() | ComplaintClosedUnconfirmed():
                await self.views.delete_one({"_id": f"closure:{event.complaint_id}"})
            case DialOutRequested():
                # the trace of the request: a retry by the ticker continues it (one trace per call-me)
                await _insert(
                    self.views,
                    {
                        "_id": f"dialout:{event.callback_id}",
                        "since": event.requested_at,
                        "traceparent": envelope.traceparent,
                    },
                )
            case CallPlaced():
                await self.views.delete_one({"_id": f"dialout:{event.callback_id}"})


#: For ``complaints --service notify rebuild <name>`` (the running app wires Outgoing to wake the courier).
PROJECTIONS = [Outgoing, Agenda]
