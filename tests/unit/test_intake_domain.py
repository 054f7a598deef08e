"""The front door's decisions, as stories: given events, when a command, then events (or an error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.envelope import Event, registry
from contracts.intake import (
    Assurance,
    CallbackCancelled,
    CallbackRequested,
    CaseClosedForOrder,
    CaseOpenedForOrder,
    Category,
    Channel,
    ClosureAnswered,
    Complainant,
    ComplaintFiled,
    ComplaintLinked,
    ContactVerified,
    CustomerMessageReceived,
    VerificationAttemptFailed,
    VerificationCodeRequested,
    VerificationLocked,
)
from services.intake.domain import (
    COMPLAINT,
    ORDER_CASES,
    VERIFICATION,
    AnswerClosure,
    CallbackNotFound,
    CancelCallback,
    CloseCaseForOrder,
    ComplaintNotFound,
    DomainError,
    FileComplaint,
    LinkContact,
    OpenCaseForOrder,
    ReceiveMessage,
    RequestCallback,
    RequestCode,
    TooManyCodes,
    VerificationLockedOut,
    VerifyCode,
    VerifyOutcome,
    contact_owner,
    customer_owner,
    is_verified,
    live_callback,
    open_case,
    verify_outcome,
)
from services.kernel.domain import Aggregate
from services.kernel.sealed_codes import code_digest

T0 = datetime(2026, 3, 14, 9, 12, 3, tzinfo=UTC)
SAM = Complainant(
    customer_id="cust-7781204", email="sam.okafor@example.com", phone="+447700900123", display_name="Sam Okafor"
)
ORDER = "ord-114-5523190"
WINDOW = timedelta(hours=72)
VID = "ver-3c1f8e2a-6b7d-5e90-a4c2-91d0f7b3e815"
LENA = "lena@marshandco.example.com"


def decide(aggregate: Aggregate, given: list[Event], command: object, now: datetime) -> list[Event]:
    return aggregate.decide(aggregate.fold(given), command, now)


# --- complaints and callbacks ----------------------------------------------------------------------


def file_command(**overrides) -> FileComplaint:
    return FileComplaint(
        **{
            "complaint_id": "c-2026-000042",
            "category": Category.DELIVERY_DRIVER_CONDUCT,
            "description": "The van reversed onto the pavement and nearly hit me.",
            "channel": Channel.WEB,
            "complainant": SAM,
            "order_id": ORDER,
            "tracking_numbers": ("1Z999AA10123456784",),
            "assurance": Assurance.AUTHENTICATED,
            "contact_id": "ct-2026-000311",
            **overrides,
        }
    )


def filed() -> ComplaintFiled:
    return decide(COMPLAINT, [], file_command(), T0)[0]


def callback_requested(callback_id="cb-2026-000107", at=T0 + timedelta(seconds=2)):
    return CallbackRequested(
        complaint_id="c-2026-000042", callback_id=callback_id, phone="+447700900123", requested_at=at
    )


def test_filing_a_complaint_records_who_what_how_sure_and_the_first_contact():
    [event] = decide(COMPLAINT, [], file_command(), T0)

    assert event == ComplaintFiled(
        complaint_id="c-2026-000042",
        category=Category.DELIVERY_DRIVER_CONDUCT,
        description="The van reversed onto the pavement and nearly hit me.",
        channel=Channel.WEB,
        complainant=SAM,
        order_id=ORDER,
        tracking_numbers=["1Z999AA10123456784"],
        filed_at=T0,
        assurance=Assurance.AUTHENTICATED,
        contact_id="ct-2026-000311",
    )


def test_filing_the_same_complaint_twice_records_it_once():
    assert decide(COMPLAINT, [filed()], file_command(), T0 + timedelta(seconds=5)) == []


def test_a_complaint_filed_before_assurance_existed_reads_as_unverified():
    old = ComplaintFiled.model_validate(filed().model_dump(mode="json", exclude={"assurance", "contact_id"}))

    assert COMPLAINT.fold([old]).assurance == Assurance.UNVERIFIED


def test_pushing_call_me_on_a_filed_complaint_requests_a_callback_to_that_phone():
    command = RequestCallback(callback_id="cb-2026-000107", phone="+447700900123", preferred_language="en-GB")

    events = decide(COMPLAINT, [filed()], command, T0 + timedelta(seconds=2))

    assert events == [
        CallbackRequested(
            complaint_id="c-2026-000042",
            callback_id="cb-2026-000107",
            phone="+447700900123",
            preferred_language="en-GB",
            requested_at=T0 + timedelta(seconds=2),
        )
    ]


def test_a_second_click_on_call_me_returns_the_live_callback_instead_of_a_new_one():
    given = [filed(), callback_requested()]
    second = RequestCallback(callback_id="cb-2026-000108", phone="+447700900123")

    assert decide(COMPLAINT, given, second, T0 + timedelta(seconds=3)) == []
    assert live_callback(COMPLAINT.fold(given)).callback_id == "cb-2026-000107"


def test_call_me_after_the_callback_was_cancelled_requests_a_new_one():
    given = [
        filed(),
        callback_requested(),
        CallbackCancelled(
            complaint_id="c-2026-000042",
            callback_id="cb-2026-000107",
            cancelled_at=T0 + timedelta(seconds=30),
            by="customer",
        ),
    ]

    [event] = decide(
        COMPLAINT,
        given,
        RequestCallback(callback_id="cb-2026-000108", phone="+447700900123"),
        T0 + timedelta(minutes=5),
    )

    assert event.callback_id == "cb-2026-000108"
    assert live_callback(COMPLAINT.fold([*given, event])).callback_id == "cb-2026-000108"


def test_a_callback_for_a_complaint_never_filed_is_refused_as_not_found():
    with pytest.raises(ComplaintNotFound) as refused:
        decide(COMPLAINT, [], RequestCallback(callback_id="cb-1", phone="+447700900123"), T0)

    assert isinstance(refused.value, DomainError)
    assert refused.value.code == "complaint_not_found"


def test_a_customer_can_cancel_the_live_callback():
    events = decide(
        COMPLAINT,
        [filed(), callback_requested()],
        CancelCallback(callback_id="cb-2026-000107", by="customer"),
        T0 + timedelta(seconds=30),
    )

    assert events == [
        CallbackCancelled(
            complaint_id="c-2026-000042",
            callback_id="cb-2026-000107",
            cancelled_at=T0 + timedelta(seconds=30),
            by="customer",
        )
    ]
    assert live_callback(COMPLAINT.fold([filed(), callback_requested(), *events])) is None


def test_cancelling_a_callback_twice_cancels_it_once():
    cancelled = CallbackCancelled(
        complaint_id="c-2026-000042",
        callback_id="cb-2026-000107",
        cancelled_at=T0 + timedelta(seconds=30),
        by="customer",
    )

    assert (
        decide(
            COMPLAINT,
            [filed(), callback_requested(), cancelled],
            CancelCallback(callback_id="cb-2026-000107", by="agent"),
            T0 + timedelta(minutes=1),
        )
        == []
    )


def test_cancelling_a_callback_the_complaint_never_had_names_it():
    with pytest.raises(CallbackNotFound, match="cb-9"):
        decide(COMPLAINT, [filed()], CancelCallback(callback_id="cb-9", by="customer"), T0)


def test_an_email_reply_on_the_case_is_recorded_as_a_customer_message():
    reply = ReceiveMessage(
        message_id="<CAH7kR3u9xqT2w@mail.example.com>",
        channel=Channel.EMAIL,
        text="Yes, it's closed.",
        sender="sam.okafor@example.com",
        subject_line="Re: Is your complaint closed?",
        in_reply_to="<closure.c-2026-000042@complaints.example.com>",
    )

    [event] = decide(COMPLAINT, [filed()], reply, T0 + timedelta(minutes=19))

    assert event == CustomerMessageReceived(
        complaint_id="c-2026-000042", **reply.model_dump(), received_at=T0 + timedelta(minutes=19)
    )


def test_the_same_email_delivered_twice_is_recorded_once():
    reply = ReceiveMessage(
        message_id="<m1@mail.example.com>",
        channel=Channel.EMAIL,
        text="Yes, it's closed.",
        sender="sam.okafor@example.com",
    )
    first = decide(COMPLAINT, [filed()], reply, T0 + timedelta(minutes=19))

    assert decide(COMPLAINT, [filed(), *first], reply, T0 + timedelta(minutes=20)) == []


def test_a_message_for_a_complaint_never_filed_is_refused_as_not_found():
    with pytest.raises(ComplaintNotFound):
        decide(
            COMPLAINT,
            [],
            ReceiveMessage(message_id="m1", channel=Channel.WEB, text="hello?", sender="sam.okafor@example.com"),
            T0,
        )


def test_a_no_on_the_case_page_records_the_answer_with_what_is_still_wrong():
    events = decide(COMPLAINT, [filed()], AnswerClosure(answer="no", reason="  Refund not here.  "), T0)
    assert events == [
        ClosureAnswered(complaint_id="c-2026-000042", answer="no", reason="Refund not here.", answered_at=T0)
    ]


def test_a_yes_on_the_case_page_carries_no_reason():
    [event] = decide(COMPLAINT, [filed()], AnswerClosure(answer="yes", reason="typed, then pressed yes"), T0)
    assert (event.answer, event.reason) == ("yes", "")


def test_an_answer_for_a_complaint_never_filed_is_refused_as_not_found():
    with pytest.raises(ComplaintNotFound):
        decide(COMPLAINT, [], AnswerClosure(answer="yes"), T0)


def test_a_tweet_about_the_same_order_is_linked_to_the_case_once():
    tweet = LinkContact(
        contact_id="ct-2026-000318",
        channel=Channel.SOCIAL,
        order_id=ORDER,
        text="@shop your van nearly ran me over",
        sender="@samokafor",
    )

    [event] = decide(COMPLAINT, [filed()], tweet, T0 + timedelta(minutes=8))

    assert event == ComplaintLinked(
        complaint_id="c-2026-000042", **tweet.model_dump(), linked_at=T0 + timedelta(minutes=8)
    )
    assert decide(COMPLAINT, [filed(), event], tweet, T0 + timedelta(minutes=9)) == []


def test_the_contact_that_opened_the_case_is_not_linked_to_it_again():
    opener = LinkContact(
        contact_id="ct-2026-000311",
        channel=Channel.WEB,
        order_id=ORDER,
        text="The van nearly hit me.",
        sender="sam.okafor@example.com",
    )

    assert decide(COMPLAINT, [filed()], opener, T0 + timedelta(seconds=1)) == []


# --- one open case per order and proven owner ---------------------------------------------------

SAM_LOGIN = customer_owner("cust-7781204")


def opened(complaint_id="c-2026-000042", at=T0, owner=SAM_LOGIN) -> CaseOpenedForOrder:
    return CaseOpenedForOrder(order_id=ORDER, complaint_id=complaint_id, owner=owner, opened_at=at)


def claim(complaint_id: str, owner: str = SAM_LOGIN) -> OpenCaseForOrder:
    return OpenCaseForOrder(order_id=ORDER, complaint_id=complaint_id, owner=owner, window=WINDOW)


def test_the_first_proven_contact_about_an_order_opens_its_case():
    assert decide(ORDER_CASES, [], claim("c-2026-000042"), T0) == [opened()]


def test_the_same_owner_about_the_same_order_within_the_window_joins_their_open_case():
    later = T0 + timedelta(minutes=8)

    assert decide(ORDER_CASES, [opened()], claim("c-2026-000043"), later) == []
    assert open_case(ORDER_CASES.fold([opened()]), SAM_LOGIN, later, WINDOW) == "c-2026-000042"


def test_another_owner_about_the_same_order_opens_a_case_of_their_own():
    later = T0 + timedelta(minutes=8)
    stranger = contact_owner("someone.else@example.com")

    assert decide(ORDER_CASES, [opened()], claim("c-2026-000043", stranger), later) == [
        opened("c-2026-000043", later, stranger)
    ]
    assert open_case(ORDER_CASES.fold([opened()]), stranger, later, WINDOW) is None


def test_a_verified_contact_is_the_same_owner_whatever_the_case_of_its_letters():
    assert contact_owner(" Lena@MarshAndCo.example.com") == contact_owner(LENA)
    assert contact_owner(LENA) != customer_owner(LENA)


def test_a_case_opened_before_owners_were_recorded_is_joined_by_nobody():
    ownerless = CaseOpenedForOrder(order_id=ORDER, complaint_id="c-2026-000009", opened_at=T0)
    later = T0 + timedelta(minutes=8)

    assert open_case(ORDER_CASES.fold([ownerless]), SAM_LOGIN, later, WINDOW) is None
    assert decide(ORDER_CASES, [ownerless], claim("c-2026-000042"), later) == [opened(at=later)]
    assert (
        decide(ORDER_CASES, [ownerless], CloseCaseForOrder(order_id=ORDER, complaint_id="c-2026-000009"), later) == []
    )


def test_a_contact_about_the_order_after_the_window_opens_a_new_case():
    later = T0 + WINDOW + timedelta(seconds=1)

    assert decide(ORDER_CASES, [opened()], claim("c-2026-000077"), later) == [opened("c-2026-000077", later)]


def test_web_email_and_social_of_one_proven_owner_about_one_order_yield_one_case():
    given: list[Event] = []
    for n, complaint_id in enumerate(["c-web", "c-email", "c-social"]):
        given += decide(ORDER_CASES, given, claim(complaint_id), T0 + timedelta(minutes=n))

    assert given == [opened("c-web")]


def test_a_retry_after_a_crash_finds_its_own_case_open_and_files_it():
    assert decide(ORDER_CASES, [opened()], claim("c-2026-000042"), T0 + timedelta(seconds=2)) == []
    assert open_case(ORDER_CASES.fold([opened()]), SAM_LOGIN, T0, WINDOW) == "c-2026-000042"


def test_after_the_case_is_closed_the_next_contact_about_the_order_opens_a_new_one():
    closed = decide(
        ORDER_CASES,
        [opened()],
        CloseCaseForOrder(order_id=ORDER, complaint_id="c-2026-000042"),
        T0 + timedelta(minutes=20),
    )

    assert closed == [
        CaseClosedForOrder(order_id=ORDER, complaint_id="c-2026-000042", closed_at=T0 + timedelta(minutes=20))
    ]
    assert decide(ORDER_CASES, [opened(), *closed], claim("c-2026-000050"), T0 + timedelta(hours=1)) == [
        opened("c-2026-000050", T0 + timedelta(hours=1))
    ]


def test_closing_one_owners_case_leaves_the_other_owners_case_open():
    lena = contact_owner(LENA)
    given = [opened(), opened("c-2026-000043", owner=lena)]

    given += decide(ORDER_CASES, given, CloseCaseForOrder(order_id=ORDER, complaint_id="c-2026-000042"), T0)

    assert open_case(ORDER_CASES.fold(given), SAM_LOGIN, T0, WINDOW) is None
    assert open_case(ORDER_CASES.fold(given), lena, T0, WINDOW) == "c-2026-000043"


def test_closing_a_case_that_is_no_longer_the_owners_open_one_changes_nothing():
    given = [opened(), opened("c-2026-000077", T0 + WINDOW * 2)]

    assert (
        decide(ORDER_CASES, given, CloseCaseForOrder(order_id=ORDER, complaint_id="c-2026-000042"), T0 + WINDOW * 3)
        == []
    )
    assert open_case(ORDER_CASES.fold(given), SAM_LOGIN, T0 + WINDOW * 2, WINDOW) == "c-2026-000077"


# --- the locked-out seller's one-time code ---------------------------------------------------------

S0 = datetime(2026, 3, 26, 8, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


#: The signing keys, the first signing: a code is kept as its digest under the first, and an
#: entry is checked under each (docs/adr/0025).
KEYS = ("k-new-0123456789", "k-old-0123456789")


def digest(code: str, key: str = KEYS[0]) -> str:
    return code_digest(code, VID, key)


def request(code="481516") -> RequestCode:
    return RequestCode(
        verification_id=VID,
        channel="email",
        destination=LENA,
        code_digest=digest(code),
        code_sealed=f"sealed-for-notify:{code}",
        ttl=TTL,
    )


def code_sent(code="481516", at=S0, key: str = KEYS[0]) -> VerificationCodeRequested:
    return VerificationCodeRequested(
        verification_id=VID,
        channel="email",
        destination=LENA,
        code_digest=digest(code, key),
        code_sealed=f"sealed-for-notify:{code}",
        expires_at=at + TTL,
        requested_at=at,
    )


def verify(code="481516") -> VerifyCode:
    return VerifyCode(verification_id=VID, code_digests=tuple(digest(code, k) for k in KEYS), seller_id="sell-00311")


def failed(attempts: int, at=S0 + timedelta(minutes=1)) -> VerificationAttemptFailed:
    return VerificationAttemptFailed(verification_id=VID, attempts=attempts, failed_at=at)


def test_a_locked_out_seller_asks_for_a_code_sent_to_the_email_on_file():
    assert decide(VERIFICATION, [], request(), S0) == [code_sent()]


def test_the_right_code_in_time_verifies_the_contact():
    events = decide(VERIFICATION, [code_sent()], verify(), S0 + timedelta(minutes=2))

    assert events == [
        ContactVerified(
            verification_id=VID, destination=LENA, seller_id="sell-00311", verified_at=S0 + timedelta(minutes=2)
        )
    ]
    assert is_verified(VERIFICATION.fold([code_sent(), *events]))
    assert verify_outcome(e.ce_type() for e in events) == VerifyOutcome.VERIFIED


def test_entering_the_right_code_again_after_verifying_changes_nothing():
    verified = decide(VERIFICATION, [code_sent()], verify(), S0 + timedelta(minutes=2))

    again = decide(VERIFICATION, [code_sent(), *verified], verify(), S0 + timedelta(minutes=3))

    assert again == []
    assert verify_outcome([]) == VerifyOutcome.VERIFIED


def test_a_wrong_code_counts_as_a_failed_attempt():
    events = decide(VERIFICATION, [code_sent()], verify("000000"), S0 + timedelta(minutes=1))

    assert events == [failed(1)]
    assert verify_outcome(e.ce_type() for e in events) == VerifyOutcome.REJECTED


def test_the_right_code_after_it_expired_is_refused():
    events = decide(VERIFICATION, [code_sent()], verify(), S0 + TTL)

    assert events == [failed(1, S0 + TTL)]


def test_only_the_latest_code_verifies():
    given = [code_sent("481516"), code_sent("902233", S0 + timedelta(minutes=2))]

    assert decide(VERIFICATION, given, verify("481516"), S0 + timedelta(minutes=3)) == [
        failed(1, S0 + timedelta(minutes=3))
    ]


def test_a_code_for_a_contact_that_was_never_sent_one_fails_like_any_wrong_code():
    # The same answer whether or not a code went out: nothing says whether the contact exists.
    assert decide(VERIFICATION, [], verify(), S0) == [failed(1, S0)]


def test_the_fifth_wrong_code_locks_the_verification():
    now = S0 + timedelta(minutes=2)

    events = decide(VERIFICATION, [code_sent(), *(failed(n) for n in range(1, 5))], verify("000000"), now)

    assert events == [
        failed(5, now),
        VerificationLocked(verification_id=VID, locked_at=now, locked_until=now + timedelta(hours=1)),
    ]
    assert verify_outcome(e.ce_type() for e in events) == VerifyOutcome.LOCKED


def test_while_locked_even_the_right_code_is_refused_with_the_time_to_wait():
    locked = VerificationLocked(
        verification_id=VID, locked_at=S0 + timedelta(minutes=2), locked_until=S0 + timedelta(hours=1, minutes=2)
    )
    given = [code_sent(), *(failed(n) for n in range(1, 6)), locked]

    with pytest.raises(VerificationLockedOut) as refused:
        decide(VERIFICATION, given, verify(), S0 + timedelta(minutes=5))

    assert refused.value.retry_after == timedelta(minutes=57)
    with pytest.raises(VerificationLockedOut):
        decide(VERIFICATION, given, request(), S0 + timedelta(minutes=5))


def test_when_the_lock_ends_a_new_code_starts_afresh_and_the_old_one_is_void():
    locked = VerificationLocked(
        verification_id=VID, locked_at=S0 + timedelta(minutes=2), locked_until=S0 + timedelta(minutes=62)
    )
    given = [code_sent(), *(failed(n) for n in range(1, 6)), locked]
    after = S0 + timedelta(minutes=63)

    assert decide(VERIFICATION, given, verify("481516"), after) == [failed(1, after)]
    fresh = decide(VERIFICATION, given, request("735102"), after)
    [verified] = decide(VERIFICATION, [*given, *fresh], verify("735102"), after)
    assert isinstance(verified, ContactVerified)


def test_a_fourth_code_within_an_hour_is_refused_with_the_time_to_wait():
    given = [code_sent(at=S0), code_sent(at=S0 + timedelta(minutes=5)), code_sent(at=S0 + timedelta(minutes=20))]

    with pytest.raises(TooManyCodes) as refused:
        decide(VERIFICATION, given, request(), S0 + timedelta(minutes=30))

    assert refused.value.retry_after == timedelta(minutes=30)
    assert "30 minute" in refused.value.message


def test_a_code_may_be_asked_for_again_once_the_oldest_of_the_hour_has_aged_out():
    given = [code_sent(at=S0), code_sent(at=S0 + timedelta(minutes=5)), code_sent(at=S0 + timedelta(minutes=20))]

    assert decide(VERIFICATION, given, request(), S0 + timedelta(hours=1)) == [code_sent(at=S0 + timedelta(hours=1))]


def test_a_code_sent_under_the_previous_signing_key_still_verifies_after_the_keys_rotate():
    [verified] = decide(VERIFICATION, [code_sent(key=KEYS[1])], verify(), S0 + timedelta(minutes=2))

    assert isinstance(verified, ContactVerified)


def test_a_code_requested_before_codes_were_sealed_verifies_nothing():
    upcast = registry.decode(
        "complaints.intake.VerificationCodeRequested.v1",
        {
            "verification_id": VID,
            "channel": "email",
            "destination": LENA,
            "code": "481516",
            "expires_at": (S0 + TTL).isoformat(),
            "requested_at": S0.isoformat(),
        },
    )

    assert "481516" not in upcast.model_dump_json()
    assert decide(VERIFICATION, [upcast], verify("481516"), S0 + timedelta(minutes=1)) == [failed(1)]
