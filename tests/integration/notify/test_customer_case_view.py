"""The customer's case page (intake's case view) shows what became of "is this closed?"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.envelope import Envelope, Event
from contracts.intake import ClosureAnswered
from contracts.notify import ClosureConfirmationRequested, ComplaintReopened, CustomerConfirmedClosed
from services.intake.projections import CaseViews
from tests.integration.notify.story import filed, resolved, someone


def envelope(event: Event) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=event.ce_type(),
        source="/services/notify",
        subject=event.subject(),
        time=datetime.now(UTC),
        correlationid="c",
        data=event.model_dump(mode="json"),
    )


def resolved_and_asked(complaint_id: str, email: str, now: datetime) -> list[Event]:
    return [
        filed(complaint_id, email),
        resolved(complaint_id),
        ClosureConfirmationRequested(
            complaint_id=complaint_id,
            message_id="<m@x>",
            to=email,
            recap="Done.",
            yes_url_expires_at=now,
            requested_at=now,
        ),
    ]


async def test_the_case_view_shows_the_question_the_reopening_and_the_confirmed_closure(db):
    views = CaseViews(db)
    complaint_id, email = someone()
    now = datetime.now(UTC)
    story = [
        *resolved_and_asked(complaint_id, email, now),
        ComplaintReopened(complaint_id=complaint_id, via="link", reopened_at=now),
    ]
    for event in story:
        await views.apply(envelope(event), event)
    await views.flush()  # as the log follower does at the end of its round
    reopened = await views.get(complaint_id)
    confirmed = CustomerConfirmedClosed(complaint_id=complaint_id, via="reply", confirmed_at=now)
    await views.apply(envelope(confirmed), confirmed)
    await views.flush()

    view = await views.get(complaint_id)
    assert reopened["status"] == "reopened" and view["status"] == "closed"
    assert [e["summary"] for e in view["timeline"]][-3:] == [
        "We asked you whether your complaint is closed",
        "You told us the problem is not solved: your case is open again",
        "You confirmed your complaint is closed",
    ]


async def test_a_page_answer_read_after_notify_s_verdict_does_not_hide_it(db):
    views = CaseViews(db)
    complaint_id, email = someone()
    now = datetime.now(UTC)
    # Yes by the email's link and Yes on the page, nearly at once: notify counted the link.
    story = [
        *resolved_and_asked(complaint_id, email, now),
        CustomerConfirmedClosed(complaint_id=complaint_id, via="link", confirmed_at=now),
        ClosureAnswered(complaint_id=complaint_id, answer="yes", answered_at=now),
    ]
    for event in story:
        await views.apply(envelope(event), event)
    await views.flush()

    view = await views.get(complaint_id)
    assert view["closure"]["state"] == "confirmed" and view["status"] == "closed"


async def test_a_round_applied_again_after_a_crash_leaves_the_views_as_they_were_and_a_filing_reads_nothing(db):
    """A complaint's filing is the first event of its documents: applied, it reads none back (three
    lookups a complaint in a burst). The follower died after writing the round's views and before
    deleting its pending entries: the next one applies the whole round again, filing first."""
    from services.intake.desk_views import DeskCaseViews
    from services.intake.projections import ExperienceFacts

    complaint_id, email = someone()
    story = [(envelope(event), event) for event in resolved_and_asked(complaint_id, email, datetime.now(UTC))]

    async def one_round(projections) -> list[str]:
        reads = []
        for projection in projections:
            find_one = projection.views.find_one

            async def counting(filter, *args, _find_one=find_one, **kwargs):
                reads.append(filter["_id"])
                return await _find_one(filter, *args, **kwargs)

            projection.views.find_one = counting
        for applied_envelope, event in story:
            for projection in projections:
                await projection.apply(applied_envelope, event)
        for projection in projections:
            await projection.flush()
        return reads

    def models():
        return [CaseViews(db), DeskCaseViews(db), ExperienceFacts(db)]

    first, again = models(), models()  # again: the next process, holding nothing
    assert await one_round(first) == [], "the filing read nothing, and the round held what it wrote"
    before = [await projection.get(complaint_id) for projection in first]
    assert await one_round(again) == []
    assert [await projection.get(complaint_id) for projection in again] == before, "nothing applied twice"
