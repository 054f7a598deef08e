"""What the customer's case page says happens next, and by when, from the case view alone."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.intake import short_reference
from services.intake.handlers import shipment_for
from services.intake.next_step import next_step

NOW = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
FILED = {
    "status": "open",
    "callback": None,
    "filed_at": "2026-03-14T08:50:00+00:00",
    "owner": {"email": "sam@example.com"},
    "assurance": "unverified",
    "channel": "web",
}


def test_a_written_complaint_is_answered_by_email_within_a_day_and_a_call_can_be_asked_for():
    step = next_step(FILED, NOW)
    assert step["title"] == "An agent will read your complaint and email you."
    assert step["by"] == "2026-03-15T08:50:00+00:00" and step["can_ask_for_call"]


def test_a_queued_call_says_its_place_and_when_the_wait_ends():
    view = {
        **FILED,
        "callback": {"state": "queued", "position": 2, "estimated_wait_s": 240, "since": "2026-03-14T08:58:00+00:00"},
    }
    step = next_step(view, NOW)
    assert step["title"] == "You are number 2 in the queue for a call."
    assert step["by"] == "2026-03-14T09:02:00+00:00" and not step["can_ask_for_call"]


def test_a_dispatched_call_says_we_are_calling_now():
    view = {**FILED, "callback": {"state": "dialling", "since": "2026-03-14T08:59:00+00:00"}}
    assert next_step(view, NOW)["title"] == "We are calling you now."


def test_a_transferred_case_says_the_team_has_it_and_when_the_customer_hears_without_naming_the_team():
    view = {**FILED, "handed_over": {"at": "2026-03-14T08:55:00+00:00", "answer_by": "2026-03-15T17:00:00+00:00"}}
    step = next_step(view, NOW)
    assert step["title"] == "Your case is with the team that can act on it."
    assert step["by"] == "2026-03-15T17:00:00+00:00"


def test_after_the_call_ended_another_can_be_asked_for_but_not_once_the_case_is_closed():
    ended = {**FILED, "callback": {"state": "ended"}, "status": "resolved"}
    assert next_step(ended, NOW)["can_ask_for_call"]
    assert not next_step({**ended, "status": "closed"}, NOW)["can_ask_for_call"]


def test_the_carrier_s_words_reach_only_a_complainant_the_order_is_proven_to_be():
    shipment = {"summary": "6 of 8 items delivered, 2 delayed: weather", "at": "2026-03-14T08:59:00+00:00"}
    assert shipment_for({**FILED, "shipment": shipment}) is None  # anyone can type an order number
    assert shipment_for({**FILED, "assurance": "authenticated", "shipment": shipment}) == shipment
    assert shipment_for({**FILED, "channel": "proactive", "shipment": shipment}) == shipment


def test_the_short_reference_is_nine_characters_a_person_can_read_aloud():
    reference = short_reference("3f2a9c10-5b7e-5d21-9a3c-0f1e2d3c4b5a")
    assert reference == short_reference("3f2a9c10-5b7e-5d21-9a3c-0f1e2d3c4b5a") and len(reference) == 9
    assert reference[4] == "-" and not set(reference) & set("ILOU")
