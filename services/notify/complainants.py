"""Who to write to about a case: the complainant's contact ways, noted once from ComplaintFiled. Pure."""

from __future__ import annotations

from datetime import datetime

from contracts.envelope import Event
from contracts.intake import Category, ComplaintFiled
from contracts.notify import ComplainantNoted
from services.kernel.domain import Aggregate, Value


def complainant_stream(complaint_id: str) -> str:
    """The stream of one case's complainant, as notify knows them."""
    return f"complainant-{complaint_id}"


class NoteComplainant(Value):
    """Remember how to reach the complainant of a newly filed complaint."""

    filed: ComplaintFiled


class Complainant(Value):
    """How to reach a case's complainant; ``recipient`` is the id the loop guard counts by."""

    complaint_id: str | None = None
    recipient: str | None = None
    email: str | None = None
    phone: str | None = None
    display_name: str | None = None
    account_locked: bool = False

    @property
    def greeting(self) -> str:
        return (self.display_name or "").split(" ")[0] or "there"


def decide_complainant(state: Complainant, command: NoteComplainant, now: datetime) -> list[Event]:
    if state.complaint_id is not None:
        return []
    filed, who = command.filed, command.filed.complainant
    recipient = who.seller_id or who.customer_id or (who.email or "").lower() or who.phone or who.social_handle
    return [
        ComplainantNoted(
            complaint_id=filed.complaint_id,
            recipient=recipient,
            email=who.email.lower() if who.email else None,
            phone=who.phone,
            display_name=who.display_name,
            account_locked=filed.category == Category.ACCOUNT_LOCKED,
            noted_at=now,
        )
    ]


def evolve_complainant(state: Complainant, event: Event) -> Complainant:
    if isinstance(event, ComplainantNoted):
        return Complainant(**event.model_dump(exclude={"noted_at"}))
    return state


COMPLAINANT: Aggregate[Complainant] = Aggregate(Complainant(), evolve_complainant, decide_complainant)
