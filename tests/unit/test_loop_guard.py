"""The loop guard, as story 3: no one is emailed again and again about what they cannot do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notify.loop_guard import (
    Facts,
    GuardPolicy,
    Ledger,
    ProposedMessage,
    RequiredAction,
    Send,
    Suppress,
    judge,
    record_sent,
    record_suppressed,
)

T0 = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
LENA = "sell-00311"
LENA_EMAIL = "lena@marshandco.example.com"
CASE = "c-2026-000311"


def reminder(**overrides) -> ProposedMessage:
    return ProposedMessage(
        **{
            "recipient": LENA,
            "address": LENA_EMAIL,
            "complaint_id": CASE,
            "template": "lost_parcel_reminder",
            "required_action": RequiredAction.REPLY,
            "channel": "email",
            **overrides,
        }
    )


def login_reminder(**overrides) -> ProposedMessage:
    return reminder(template="seller_login_reminder", required_action=RequiredAction.LOG_IN, **overrides)


def sent_daily(message: ProposedMessage, days: int) -> Ledger:
    ledger = Ledger()
    for day in range(days):
        ledger = record_sent(ledger, message, T0 + timedelta(days=day))
    return ledger


LOCKED = Facts(locked_accounts=frozenset({LENA}))


def test_a_first_message_to_a_reachable_person_who_can_act_is_sent():
    assert judge(Ledger(), Facts(), reminder(), T0) == Send()


def test_a_log_in_reminder_is_never_sent_to_a_seller_whose_account_is_locked():
    verdict = judge(Ledger(), LOCKED, login_reminder(), T0)

    assert isinstance(verdict, Suppress)
    assert (verdict.reason, verdict.alternative) == ("cannot_act", "human")
    assert "locked" in verdict.detail


def test_a_locked_out_seller_with_a_phone_on_file_is_called_back_instead_of_told_to_log_in():
    verdict = judge(Ledger(), LOCKED, login_reminder(fallbacks=("callback", "sms")), T0)

    assert (verdict.reason, verdict.alternative) == ("cannot_act", "callback")


def test_contacting_seller_support_is_also_impossible_while_locked_out():
    message = reminder(required_action=RequiredAction.CONTACT_SELLER_SUPPORT)

    assert judge(Ledger(), LOCKED, message, T0).reason == "cannot_act"


def test_a_message_that_needs_no_login_still_reaches_a_locked_out_seller():
    assert judge(Ledger(), LOCKED, reminder(), T0) == Send()


def test_a_locked_out_seller_is_escalated_to_a_human_once_not_every_day():
    message = login_reminder()
    first = judge(Ledger(), LOCKED, message, T0)
    ledger = record_suppressed(Ledger(), message, first, T0)

    second = judge(ledger, LOCKED, message, T0 + timedelta(days=1))

    assert (first.alternative, second.alternative) == ("human", "none")


def test_the_fourth_reminder_for_the_same_case_is_suppressed_and_a_human_is_asked():
    ledger = sent_daily(reminder(), days=3)

    verdict = judge(ledger, Facts(), reminder(), T0 + timedelta(days=3))

    assert (verdict.reason, verdict.alternative) == ("cap_reached", "human")


def test_twelve_days_of_daily_reminders_send_at_most_the_cap_and_ask_a_human_once():
    ledger, sent, suppressed = Ledger(), 0, []
    for day in range(12):
        now = T0 + timedelta(days=day)
        verdict = judge(ledger, Facts(), reminder(), now, GuardPolicy(max_per_case=3))
        if isinstance(verdict, Send):
            ledger, sent = record_sent(ledger, reminder(), now), sent + 1
        else:
            ledger = record_suppressed(ledger, reminder(), verdict, now)
            suppressed.append(verdict.alternative)

    assert sent == 3
    assert suppressed == ["human"] + ["none"] * 8


def test_the_cap_is_per_case_so_another_case_of_the_same_person_is_not_held_back():
    ledger = sent_daily(reminder(), days=3)

    verdict = judge(ledger, Facts(), reminder(complaint_id="c-2026-000312"), T0 + timedelta(days=3))

    assert verdict == Send()


def test_the_same_template_twice_in_a_day_is_held_back_unless_an_agent_acted():
    ledger = record_sent(Ledger(), reminder(), T0)
    later = T0 + timedelta(hours=6)

    held = judge(ledger, Facts(), reminder(), later)
    agent_acted = Facts(human_actions={CASE: T0 + timedelta(hours=2)})
    after_agent = judge(ledger, agent_acted, reminder(), later)

    assert (held.reason, held.alternative) == ("daily_limit", "none")
    assert after_agent == Send()


def test_an_agent_action_before_the_last_send_does_not_lift_the_daily_limit():
    ledger = record_sent(Ledger(), reminder(), T0)
    facts = Facts(human_actions={CASE: T0 - timedelta(hours=1)})

    assert judge(ledger, facts, reminder(), T0 + timedelta(hours=6)).reason == "daily_limit"


def test_the_same_template_a_day_later_may_go_again():
    ledger = record_sent(Ledger(), reminder(), T0)

    assert judge(ledger, Facts(), reminder(), T0 + timedelta(days=1)) == Send()


def test_a_person_who_asks_for_a_new_code_gets_it_the_same_day():
    code = ProposedMessage(
        recipient=LENA_EMAIL, address=LENA_EMAIL, template="one_time_code", required_action=RequiredAction.ENTER_CODE
    )
    ledger = record_sent(Ledger(), code, T0)
    facts = Facts(human_actions={LENA_EMAIL: T0 + timedelta(minutes=10)})

    assert judge(ledger, facts, code, T0 + timedelta(minutes=10)) == Send()


def test_an_undeliverable_address_is_not_written_to_and_sms_is_used_if_possible():
    facts = Facts(undeliverable=frozenset({LENA_EMAIL}))

    by_sms = judge(Ledger(), facts, reminder(fallbacks=("sms",)), T0)
    no_way = judge(Ledger(), facts, reminder(), T0)

    assert (by_sms.reason, by_sms.alternative) == ("undeliverable", "sms")
    assert (no_way.reason, no_way.alternative) == ("undeliverable", "human")
