"""The address ledger (the loop guard as an event-sourced stream) and the dial-out, as stories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.envelope import Event
from contracts.notify import (
    AccountLockNoted,
    CallFailed,
    CallPlaced,
    EscalationRequested,
    MessageQueued,
    MessageSent,
    NotificationFailed,
    NotificationSuppressed,
    OutcomeShared,
)
from services.notify.dialout import DIALOUT, RecordCall, RequestDialOut
from services.notify.domain import CallRetryPolicy
from services.notify.ledger import (
    LEDGER,
    MarkUndeliverable,
    NoteAccountLock,
    ProposeMessage,
    RecordFailure,
    RecordSent,
)
from services.notify.loop_guard import ProposedMessage, RequiredAction

T0 = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
EMAIL = "lena@marshandco.example.com"


def run(aggregate, given: list[Event], command: object, now: datetime) -> list[Event]:
    return aggregate.decide(aggregate.fold(given), command, now)


def reminder(day: int) -> ProposeMessage:
    return ProposeMessage(
        message_id=f"<login.{day}@x>",
        message=ProposedMessage(
            recipient="sell-00311",
            address=EMAIL,
            template="seller_login_reminder",
            required_action=RequiredAction.LOG_IN,
        ),
    )


def days_of_reminders(given: list[Event], days: int) -> list[Event]:
    for day in range(days):
        given = given + run(LEDGER, given, reminder(day), T0 + day * DAY)
    return given


def test_daily_reminders_go_out_up_to_the_cap_then_one_escalation_then_silence():
    log = days_of_reminders([], 12)

    assert [type(e).__name__ for e in log[:3]] == ["MessageQueued"] * 3
    assert isinstance(log[3], NotificationSuppressed) and log[3].reason == "cap_reached"
    assert isinstance(log[4], EscalationRequested) and log[4].recipient == "sell-00311"
    assert [e.alternative for e in log[5:]] == ["none"] * 8


def test_a_locked_account_gets_no_log_in_reminder_at_all():
    locked = run(LEDGER, [], NoteAccountLock(address=EMAIL, recipient="sell-00311"), T0)

    log = days_of_reminders(locked, 2)

    assert isinstance(log[0], AccountLockNoted)
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in log[1:]] == [
        ("NotificationSuppressed", "cannot_act"),
        ("EscalationRequested", "cannot_act"),
        ("NotificationSuppressed", "cannot_act"),
    ]


def test_the_same_intent_is_judged_once_whatever_the_retries():
    first = run(LEDGER, [], reminder(0), T0)

    assert run(LEDGER, first, reminder(0), T0 + timedelta(minutes=1)) == []
    held = days_of_reminders([], 4)[3:]
    assert run(LEDGER, days_of_reminders([], 4), reminder(3), T0 + 5 * DAY) == []
    assert held[0].message_id == "<login.3@x>"


def test_a_bounced_address_is_not_written_to_and_a_human_is_asked_to_find_another_way():
    bounced = run(LEDGER, [], MarkUndeliverable(address=EMAIL.upper(), bounce_status="5.1.1"), T0)

    held, asked = run(LEDGER, bounced, reminder(0), T0)

    assert held.reason == "undeliverable" and isinstance(asked, EscalationRequested)


def test_a_sent_message_is_recorded_once_and_an_outcome_says_it_was_shared():
    outcome = ProposeMessage(
        message_id="<outcome.1@x>",
        message=ProposedMessage(recipient="cust-1", address=EMAIL, complaint_id="c-1", template="outcome"),
    )
    queued = run(LEDGER, [], outcome, T0)

    sent = run(LEDGER, queued, RecordSent(message_id="<outcome.1@x>", attempts=2), T0)

    assert isinstance(queued[0], MessageQueued)
    assert [type(e) for e in sent] == [MessageSent, OutcomeShared] and sent[0].attempts == 2
    assert run(LEDGER, queued + sent, RecordSent(message_id="<outcome.1@x>", attempts=3), T0) == []
    assert run(LEDGER, queued + sent, RecordFailure(message_id="<outcome.1@x>", attempts=3, reason="x"), T0) == []


def test_a_message_given_up_says_why_and_after_how_many_attempts():
    queued = run(LEDGER, [], reminder(0), T0)

    [failed] = run(LEDGER, queued, RecordFailure(message_id="<login.0@x>", attempts=6, reason="refused"), T0)

    assert isinstance(failed, NotificationFailed) and failed.attempts == 6 and failed.recipient == "sell-00311"


def dispatched() -> list[Event]:
    return run(
        DIALOUT, [], RequestDialOut(complaint_id="c-1", callback_id="cb-1", agent_id="agt-1", phone="+447700900123"), T0
    )


def test_a_dial_out_is_due_at_once_then_after_each_wait_of_the_policy_then_gives_up():
    log = dispatched()
    state = DIALOUT.fold(log)
    assert state.next_attempt_at(_policy()) == T0
    for attempt, failed_at in ((1, T0), (2, T0 + timedelta(seconds=30)), (3, T0 + timedelta(minutes=3))):
        log = log + run(DIALOUT, log, RecordCall(attempt=attempt, reason="no-answer"), failed_at)
    state = DIALOUT.fold(log)

    assert [type(e) for e in log[1:]] == [CallFailed] * 3
    assert [e.final for e in log[1:]] == [False, False, True]
    assert state.gave_up(_policy()) and state.next_attempt_at(_policy()) is None


def test_the_same_attempt_recorded_twice_and_a_placed_call_change_nothing():
    log = dispatched()
    log = log + run(DIALOUT, log, RecordCall(attempt=1, call_sid="CA1"), T0)

    assert isinstance(log[-1], CallPlaced)
    assert run(DIALOUT, log, RecordCall(attempt=1, call_sid="CA1"), T0) == []
    assert run(DIALOUT, log, RecordCall(attempt=2, reason="busy"), T0) == []
    assert DIALOUT.fold(log).next_attempt_at(_policy()) is None


def _policy() -> CallRetryPolicy:
    return CallRetryPolicy()
