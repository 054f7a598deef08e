"""The closure loop and dial-out retries as stories: given events, when a command, then events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import contracts.notify  # noqa: F401  (registers notify's events until contracts imports it)
from contracts.envelope import Event
from contracts.notify import (
    ClosureConfirmationRequested,
    ComplaintClosedUnconfirmed,
    ComplaintReopened,
    CustomerConfirmedClosed,
)
from services.notify.domain import (
    CLOSURE,
    CallRetryPolicy,
    Confirm,
    Dispute,
    ProposeClosure,
    ReadReply,
    Tick,
    closure_stream,
    next_call_attempt,
    read_reply,
    reminder_message_id,
    reply_is_question,
)

T0 = datetime(2026, 3, 14, 9, 29, 31, tzinfo=UTC)
CID = "c-2026-000042"
MID = "<closure.c-2026-000042.1@complaints.example.com>"
SECOND_MID = "<closure.c-2026-000042.2@complaints.example.com>"


def decide(given: list[Event], command: object, now: datetime) -> list[Event]:
    return CLOSURE.decide(CLOSURE.fold(given), command, now)


def propose(message_id: str = MID) -> ProposeClosure:
    return ProposeClosure(
        complaint_id=CID,
        message_id=message_id,
        to="sam.okafor@example.com",
        recap="We reported the driver to our logistics partner.",
        next_steps=("The partner team will tell you what they did.",),
    )


def asked(message_id: str = MID, at: datetime = T0) -> ClosureConfirmationRequested:
    return decide([], propose(message_id), at)[0]


def confirmed(at: datetime = T0 + timedelta(minutes=2)) -> CustomerConfirmedClosed:
    return CustomerConfirmedClosed(complaint_id=CID, via="link", confirmed_at=at)


def reopened(at: datetime = T0 + timedelta(minutes=2)) -> ComplaintReopened:
    return ComplaintReopened(complaint_id=CID, via="link", reopened_at=at)


# --- the question ---------------------------------------------------------------------------------


def test_a_resolution_asks_is_this_closed_with_the_recap_next_steps_and_expiring_links():
    [event] = decide([], propose(), T0)

    assert event == ClosureConfirmationRequested(
        complaint_id=CID,
        message_id=MID,
        to="sam.okafor@example.com",
        recap="We reported the driver to our logistics partner.",
        next_steps=["The partner team will tell you what they did."],
        yes_url_expires_at=T0 + timedelta(days=7),
        requested_at=T0,
        reminder=False,
    )


def test_the_same_resolution_proposed_twice_asks_once():
    assert decide([asked()], propose(), T0 + timedelta(seconds=5)) == []


def test_the_closure_loop_of_a_complaint_lives_in_its_own_stream():
    assert closure_stream(CID) == "closure-c-2026-000042"


# --- answers by link ------------------------------------------------------------------------------


def test_clicking_yes_confirms_the_closure():
    now = T0 + timedelta(minutes=2)

    assert decide([asked()], Confirm(via="link"), now) == [
        CustomerConfirmedClosed(complaint_id=CID, via="link", confirmed_at=now)
    ]


def test_clicking_no_reopens_the_same_case():
    now = T0 + timedelta(minutes=2)

    assert decide([asked()], Dispute(via="link"), now) == [
        ComplaintReopened(complaint_id=CID, via="link", reason="", reopened_at=now)
    ]


def test_a_second_click_on_yes_changes_nothing():
    assert decide([asked(), confirmed()], Confirm(via="link"), T0 + timedelta(minutes=3)) == []


def test_clicking_no_after_yes_changes_nothing():
    assert decide([asked(), confirmed()], Dispute(via="link"), T0 + timedelta(minutes=3)) == []


def test_an_answer_without_a_question_changes_nothing():
    assert decide([], Confirm(via="link"), T0) == []


def test_a_new_resolution_after_a_reopening_asks_again_and_keeps_the_history():
    given = [asked(), reopened()]

    [event] = decide(given, propose(SECOND_MID), T0 + timedelta(days=1))
    state = CLOSURE.fold([*given, event])

    assert event.message_id == SECOND_MID
    assert [r.status for r in state.rounds] == ["disputed", "proposed"]
    assert decide([*given, event], Confirm(via="link"), T0 + timedelta(days=1, minutes=1)) != []


# --- answers by reply -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "Yes it's closed",
        "resolved, thanks",
        "yes thanks, all sorted",
        "Yep. No problem, all good!",
        "Yes, it\u2019s closed. Thank you for calling me so quickly.",
    ],
)
def test_a_clear_yes_in_a_reply_is_read_as_yes(text):
    assert read_reply(text) == "yes"


@pytest.mark.parametrize(
    "text", ["no", "Still a problem", "not resolved", "no, the driver came again", "Nope, not yet."]
)
def test_a_clear_no_in_a_reply_is_read_as_no(text):
    assert read_reply(text) == "no"


@pytest.mark.parametrize(
    "text",
    [
        "When will the refund land?",
        "Yes, but it's still a problem",
        "I wouldn't say it's resolved",
        "Thanks for your email",
        "yes " + "and then the driver said something else " * 3,
    ],
)
def test_anything_but_a_plain_yes_or_no_is_a_question_for_the_agent(text):
    assert reply_is_question(text)


def test_quoted_history_in_a_reply_is_not_read_as_the_answer():
    assert read_reply("no, the driver came again\n> Is it closed? Yes, it's closed") == "no"


def test_a_reply_yes_thanks_all_sorted_confirms_by_reply():
    now = T0 + timedelta(minutes=9)

    assert decide([asked()], ReadReply(text="yes thanks, all sorted"), now) == [
        CustomerConfirmedClosed(complaint_id=CID, via="reply", confirmed_at=now)
    ]


def test_a_reply_no_the_driver_came_again_reopens_with_the_words_as_the_reason():
    now = T0 + timedelta(hours=20)

    assert decide([asked()], ReadReply(text="no, the driver came again"), now) == [
        ComplaintReopened(complaint_id=CID, via="reply", reason="no, the driver came again", reopened_at=now)
    ]


def test_a_reply_that_asks_something_records_nothing_and_leaves_the_question_open():
    given = [asked()]

    question = ReadReply(text="When does the refund land?")

    assert decide(given, question, T0 + timedelta(hours=1)) == []
    assert CLOSURE.fold(given).current.status == "proposed"


# --- no answer: one reminder, then closed unconfirmed ---------------------------------------------


def test_an_unanswered_question_gets_one_reminder_after_the_wait():
    now = T0 + timedelta(days=2)

    [event] = decide([asked()], Tick(), now)

    assert event.reminder is True
    assert event.message_id == "<closure.c-2026-000042.1.reminder@complaints.example.com>"
    assert event.yes_url_expires_at == now + timedelta(days=7)
    assert (event.to, event.recap) == ("sam.okafor@example.com", "We reported the driver to our logistics partner.")


def test_nothing_is_due_before_the_reminder_wait():
    assert decide([asked()], Tick(), T0 + timedelta(days=1)) == []


def test_the_reminder_is_sent_at_most_once():
    reminder = decide([asked()], Tick(), T0 + timedelta(days=2))

    assert decide([asked(), *reminder], Tick(), T0 + timedelta(days=3)) == []


def test_a_still_unanswered_question_is_closed_unconfirmed_once():
    given = [asked(), *decide([asked()], Tick(), T0 + timedelta(days=2))]
    now = T0 + timedelta(days=7)

    [closed] = decide(given, Tick(), now)

    assert closed == ComplaintClosedUnconfirmed(complaint_id=CID, closed_at=now)
    assert decide([*given, closed], Tick(), now + timedelta(days=1)) == []


def test_a_tick_after_an_answer_sends_no_reminder():
    assert decide([asked(), confirmed()], Tick(), T0 + timedelta(days=3)) == []


def test_a_late_no_after_closing_unconfirmed_still_reopens_the_case():
    closed = ComplaintClosedUnconfirmed(complaint_id=CID, closed_at=T0 + timedelta(days=7))
    given = [asked(), closed]

    [event] = decide(given, ReadReply(text="not resolved"), T0 + timedelta(days=8))

    assert isinstance(event, ComplaintReopened)


def test_a_reminder_id_keeps_the_form_of_the_original_message_id():
    assert reminder_message_id("closure-42@example.com") == "closure-42.reminder@example.com"


# --- dial-out retries -----------------------------------------------------------------------------


def test_a_callback_is_dialled_at_once_then_after_30_seconds_then_after_2_minutes():
    assert [next_call_attempt(n) for n in range(3)] == [timedelta(0), timedelta(seconds=30), timedelta(minutes=2)]


def test_after_the_third_failed_call_the_customer_is_written_to_instead():
    assert next_call_attempt(3) is None


def test_the_retry_policy_is_configurable():
    policy = CallRetryPolicy(delays=(timedelta(0), timedelta(seconds=10)))

    assert next_call_attempt(1, policy) == timedelta(seconds=10)
    assert next_call_attempt(2, policy) is None
