"""A small real read model over the story events: how many notes each complaint has, and which."""

from __future__ import annotations

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Envelope, Event
from tests.integration.story_events import NoteAdded


class NotesPerComplaint:
    """``notes_per_complaint``: one document per complaint with its note numbers and their count.

    A note is applied at most once per event id, whether it arrives from the service's own
    commits or comes back through Kafka into the inbox (the same event id in both places).
    """

    name = "notes_per_complaint"

    def __init__(self, db: AsyncDatabase) -> None:
        self.notes = db[self.name]

    async def setup(self) -> None:
        await self.notes.create_index([("count", DESCENDING)], name="most_notes")

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, NoteAdded):
            return
        try:
            # One atomic update: it matches only while the event id is absent, so a repeat
            # finds no document and its upsert collides with the existing _id.
            await self.notes.update_one(
                {"_id": event.complaint_id, "event_ids": {"$ne": envelope.id}},
                {"$push": {"event_ids": envelope.id, "notes": event.n}, "$inc": {"count": 1}},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # already applied

    async def reset(self) -> None:
        await self.notes.drop()


#: Factories ``(db) -> Projection`` that ``complaints rebuild --projections`` loads.
PROJECTIONS = [NotesPerComplaint]
