"""Notify's work lists, built from its log: messages still to deliver, and timers still to watch.

Both are fed by the log follower, so a crash between deciding and doing loses nothing: what was
queued is in the log, and the follower applies it to ``outgoing`` before it clears the entry.
A rebuild replays the log and leaves exactly what is still owed (sent messages are removed).
Insert-only and delete-only here: the courier and the ticker delete too, never in conflict. The
work items are written when the follower's round ends, all of a round in one bulk per list
(``create``/``remove``): a dial-out requested and placed within one round costs one delete.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

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


class Outgoing(DocumentProjection):
    """One document per queued message not yet sent or given up: the courier's work."""

    name = "outgoing"
    events = (MessageQueued, MessageSent, NotificationFailed)

    def __init__(self, db: AsyncDatabase, wake: Callable[[], None] = lambda: None) -> None:
        super().__init__(db)
        self.wake, self._queued = wake, False

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if isinstance(event, MessageQueued):
            self.create(
                event.message_id,
                {
                    "address": event.address,
                    "attempts": 0,
                    "due_at": datetime.now(UTC),
                    "queued": event.model_dump(mode="json"),
                },
            )
            self._queued = True
        elif isinstance(event, (MessageSent, NotificationFailed)):
            self.remove(event.message_id)

    async def flush(self) -> None:
        await super().flush()
        if self._queued:  # the courier looks once the jobs are stored
            self._queued = False
            self.wake()


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
            # A dial-out's entry never shares its key with a closure's: written at the round's end,
            # it cannot be overtaken by the closure writes above, which go at once.
            case DialOutRequested():
                # the trace of the request: a retry by the ticker continues it (one trace per call-me)
                self.create(
                    f"dialout:{event.callback_id}",
                    {"since": event.requested_at, "traceparent": envelope.traceparent},
                )
            case CallPlaced():
                self.remove(f"dialout:{event.callback_id}")


#: For ``complaints --service notify rebuild <name>`` (the running app wires Outgoing to wake the courier).
PROJECTIONS = [Outgoing, Agenda]
