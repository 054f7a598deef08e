"""The front door's decisions: complaints and callbacks, one open case per order and owner, one-time codes."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.carrier import ExceptionReason, ShipmentExceptionDetected, ShipmentStatus
from contracts.envelope import Event
from contracts.intake import (
    BCP47,
    E164,
    Assurance,
    CallbackCancelled,
    CallbackRequested,
    CancelledBy,
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
from services.kernel.domain import Aggregate, Value
from services.kernel.errors import DomainError

HOUR = timedelta(hours=1)


def complaint_stream(complaint_id: str) -> str:
    """The stream of one complaint's events."""
    return f"complaint-{complaint_id}"


def order_stream(order_id: str) -> str:
    """The stream that holds which complaint each proven owner has open for an order."""
    return f"order-{order_id}"


def verification_stream(verification_id: str) -> str:
    """The stream of one destination's one-time codes."""
    return f"verification-{verification_id}"


# --- errors: each has a stable code for the API and a message a person can act on --------------


class ComplaintNotFound(DomainError):
    code = "complaint_not_found"
    status = 404

    def __init__(self) -> None:
        super().__init__("There is no complaint with this id; file one first.")


class CallbackNotFound(DomainError):
    code = "callback_not_found"
    status = 404

    def __init__(self, callback_id: str) -> None:
        super().__init__(f"This complaint has no callback {callback_id!r}.")
        self.callback_id = callback_id


class TooManyCodes(DomainError):
    """More codes asked for than the hourly limit allows; ``retry_after`` says how long to wait."""

    code = "too_many_codes"
    status = 429

    def __init__(self, retry_after: timedelta) -> None:
        minutes = max(1, -(-int(retry_after.total_seconds()) // 60))
        super().__init__(f"Too many codes were asked for; try again in {minutes} minute(s).")
        self.retry_after = retry_after
        self.retry_after_s = int(retry_after.total_seconds()) + 1


class VerificationLockedOut(DomainError):
    """Too many wrong codes; ``retry_after`` says when a new code may be asked for."""

    code = "verification_locked"
    status = 429

    def __init__(self, retry_after: timedelta) -> None:
        minutes = max(1, -(-int(retry_after.total_seconds()) // 60))
        super().__init__(f"Too many wrong codes; ask for a new code in {minutes} minute(s).")
        self.retry_after = retry_after
        self.retry_after_s = int(retry_after.total_seconds()) + 1


# --- complaint (stream complaint-<id>) -----------------------------------------------------------


class FileComplaint(Value):
    """Open the complaint (a repeat of an already filed one records nothing)."""

    complaint_id: str = Field(min_length=1)
    category: Category
    description: str = Field(min_length=1, max_length=5000)
    channel: Channel
    complainant: Complainant
    order_id: str | None = None
    tracking_numbers: tuple[str, ...] = ()
    assurance: Assurance = Assurance.UNVERIFIED
    contact_id: str | None = None


class RequestCallback(Value):
    """ "Call me": ask for a callback, unless one is already waiting (see ``live_callback``)."""

    callback_id: str = Field(min_length=1)
    phone: str = Field(pattern=E164)
    preferred_language: str = Field(default="en", pattern=BCP47)


class CancelCallback(Value):
    """Call the callback off before anyone dials."""

    callback_id: str = Field(min_length=1)
    by: CancelledBy


class ReceiveMessage(Value):
    """Record a message on the case: an email or social reply, a web follow-up."""

    message_id: str = Field(min_length=1)
    channel: Channel
    text: str = Field(min_length=1, max_length=20000)
    sender: str = Field(min_length=1, max_length=320)
    subject_line: str | None = None
    in_reply_to: str | None = None


class LinkContact(Value):
    """Join a new contact about the same order to this open case instead of a duplicate."""

    contact_id: str = Field(min_length=1)
    channel: Channel
    order_id: str | None = None
    text: str = Field(min_length=1, max_length=20000)
    sender: str = Field(min_length=1, max_length=320)


class AnswerClosure(Value):
    """The complainant's answer to "is your complaint closed?" from their case page.

    Recorded as given: whether a question is open, and which round it answers, is notify's to
    decide (it owns the question), so intake adds no rule here.
    """

    answer: Literal["yes", "no"]
    reason: str = Field(default="", max_length=2000)


class Callback(Value):
    """A callback the complaint asked for, and whether it still stands."""

    callback_id: str
    phone: str
    requested_at: datetime
    status: Literal["requested", "cancelled"] = "requested"


class Complaint(Value):
    """What intake needs to know of a complaint to decide the next command."""

    filed: bool = False
    complaint_id: str | None = None
    complainant: Complainant | None = None
    category: Category | None = None
    order_id: str | None = None
    assurance: Assurance = Assurance.UNVERIFIED
    callbacks: dict[str, Callback] = {}
    contact_ids: frozenset[str] = frozenset()
    message_ids: frozenset[str] = frozenset()


def live_callback(state: Complaint) -> Callback | None:
    """The callback still waiting to be made, if any: a second "call me" returns it."""
    return next((c for c in state.callbacks.values() if c.status == "requested"), None)


def decide_complaint(state: Complaint, command: object, now: datetime) -> list[Event]:
    if isinstance(command, FileComplaint):
        return (
            []
            if state.filed
            else [
                ComplaintFiled(
                    **command.model_dump(exclude={"tracking_numbers"}),
                    tracking_numbers=list(command.tracking_numbers),
                    filed_at=now,
                )
            ]
        )
    if not state.filed:
        raise ComplaintNotFound()
    cid = state.complaint_id
    match command:
        case RequestCallback():
            if live_callback(state) or command.callback_id in state.callbacks:
                return []
            return [CallbackRequested(complaint_id=cid, **command.model_dump(), requested_at=now)]
        case CancelCallback():
            callback = state.callbacks.get(command.callback_id)
            if callback is None:
                raise CallbackNotFound(command.callback_id)
            if callback.status == "cancelled":
                return []
            return [CallbackCancelled(complaint_id=cid, **command.model_dump(), cancelled_at=now)]
        case ReceiveMessage():
            if command.message_id in state.message_ids:
                return []
            return [CustomerMessageReceived(complaint_id=cid, **command.model_dump(), received_at=now)]
        case LinkContact():
            if command.contact_id in state.contact_ids:
                return []
            return [ComplaintLinked(complaint_id=cid, **command.model_dump(), linked_at=now)]
        case AnswerClosure():
            reason = command.reason.strip() if command.answer == "no" else ""
            return [ClosureAnswered(complaint_id=cid, answer=command.answer, reason=reason, answered_at=now)]
    raise TypeError(f"the complaint aggregate has no command {type(command).__name__}")


def evolve_complaint(state: Complaint, event: Event) -> Complaint:
    match event:
        case ComplaintFiled():
            return state.model_copy(
                update=dict(
                    filed=True,
                    complaint_id=event.complaint_id,
                    complainant=event.complainant,
                    category=event.category,
                    order_id=event.order_id,
                    assurance=event.assurance,
                    contact_ids=state.contact_ids | ({event.contact_id} if event.contact_id else set()),
                )
            )
        case CallbackRequested():
            callback = Callback(callback_id=event.callback_id, phone=event.phone, requested_at=event.requested_at)
            return state.model_copy(update={"callbacks": {**state.callbacks, event.callback_id: callback}})
        case CallbackCancelled() if event.callback_id in state.callbacks:
            cancelled = state.callbacks[event.callback_id].model_copy(update={"status": "cancelled"})
            return state.model_copy(update={"callbacks": {**state.callbacks, event.callback_id: cancelled}})
        case CustomerMessageReceived():
            return state.model_copy(update={"message_ids": state.message_ids | {event.message_id}})
        case ComplaintLinked():
            return state.model_copy(update={"contact_ids": state.contact_ids | {event.contact_id}})
    return state


COMPLAINT: Aggregate[Complaint] = Aggregate(Complaint(), evolve_complaint, decide_complaint)


# --- proactive cases: a carrier's exception before anyone complains --------------------------------

#: What a pushed exception is about, as the complaint page would have asked it: by status, then
#: (for an exception) by its reason; anything else is a package that did not come.
PROACTIVE_CATEGORY = {
    ShipmentStatus.DELAYED: Category.LATE_DELIVERY,
    ShipmentStatus.LOST: Category.PACKAGE_NOT_RECEIVED,
    ShipmentStatus.RETURNED_TO_SENDER: Category.PACKAGE_NOT_RECEIVED,
}
PROACTIVE_CATEGORY_OF_REASON = {
    ExceptionReason.DAMAGE: Category.DAMAGED_ITEM,
    ExceptionReason.ADDRESS: Category.WRONG_ADDRESS,
    ExceptionReason.WEATHER: Category.LATE_DELIVERY,
    ExceptionReason.OPERATIONAL: Category.LATE_DELIVERY,
    ExceptionReason.CUSTOMS: Category.LATE_DELIVERY,
}


def proactive_complaint(alert: ShipmentExceptionDetected, complaint_id: str, contact_id: str) -> FileComplaint:
    """The case we open for the customer when a carrier reports trouble with their order."""
    category = PROACTIVE_CATEGORY.get(alert.status) or (
        PROACTIVE_CATEGORY_OF_REASON.get(alert.reason, Category.PACKAGE_NOT_RECEIVED)
        if alert.reason
        else Category.PACKAGE_NOT_RECEIVED
    )
    estimate = f" New estimate: {alert.estimated_delivery_by.isoformat()}." if alert.estimated_delivery_by else ""
    reason = f" ({alert.reason.value.replace('_', ' ')})" if alert.reason else ""
    description = (
        f"Opened by us before any complaint: {alert.carrier.value} reports package "
        f"{alert.tracking_number} of order {alert.order_id} {alert.status.value.replace('_', ' ')}"
        f"{reason}: {alert.carrier_status}.{estimate}"
    )[:5000]
    return FileComplaint(
        complaint_id=complaint_id,
        category=category,
        description=description,
        channel=Channel.PROACTIVE,
        complainant=Complainant(customer_id=alert.customer_id),
        order_id=alert.order_id,
        tracking_numbers=(alert.tracking_number,),
        contact_id=contact_id,
    )


# --- one open case per order and proven owner (stream order-<order_id>) ---------------------------
#
# Joining a case hands the filer its access token, so only the person who proved to be its
# complainant may join it: an order number is no secret (it is on parcels, in forwarded emails).
# Anyone else who names the order gets a case of their own; staff see the cases as related.


def customer_owner(customer_id: str) -> str:
    """The owner key of a customer proven by their login (or, for a proactive case, by the order)."""
    return f"customer:{customer_id}"


def contact_owner(destination: str) -> str:
    """The owner key of an email address or phone number proven by a one-time code."""
    return f"contact:{destination.strip().lower()}"


class OpenCaseForOrder(Value):
    """Claim the order for ``owner``'s ``complaint_id`` unless ``owner`` has a case opened within
    ``window``; ``owner`` comes from a proof (``customer_owner``, ``contact_owner``), never from
    what the filer typed."""

    order_id: str = Field(min_length=1)
    complaint_id: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    window: timedelta


class CloseCaseForOrder(Value):
    """Release the order: its owner's next contact about it opens a new case."""

    order_id: str = Field(min_length=1)
    complaint_id: str = Field(min_length=1)


class OpenCase(Value):
    """One owner's open case of the order, and since when."""

    complaint_id: str
    opened_at: datetime


class OrderCases(Value):
    """The open case of each proven owner for one order."""

    order_id: str | None = None
    open_cases: dict[str, OpenCase] = {}


def open_case(state: OrderCases, owner: str, now: datetime, window: timedelta) -> str | None:
    """The complaint ``owner``'s new contact about this order should join, if they opened one
    within ``window``.

    After ``OpenCaseForOrder`` it is the caller's own complaint id when the caller won (or when it
    retries after a crash between claiming the order and filing): then file; otherwise link.
    """
    case = state.open_cases.get(owner)
    return case.complaint_id if case and now - case.opened_at < window else None


def decide_order_cases(state: OrderCases, command: object, now: datetime) -> list[Event]:
    match command:
        case OpenCaseForOrder():
            if open_case(state, command.owner, now, command.window) is not None:
                return []
            return [
                CaseOpenedForOrder(
                    order_id=command.order_id, complaint_id=command.complaint_id, owner=command.owner, opened_at=now
                )
            ]
        case CloseCaseForOrder():
            # Closing a case that is no longer open for its owner (closed, superseded after the
            # window, or never joinable) changes nothing: closes arrive from other services, late.
            if all(c.complaint_id != command.complaint_id for c in state.open_cases.values()):
                return []
            return [CaseClosedForOrder(order_id=command.order_id, complaint_id=command.complaint_id, closed_at=now)]
    raise TypeError(f"the order-cases aggregate has no command {type(command).__name__}")


def evolve_order_cases(state: OrderCases, event: Event) -> OrderCases:
    match event:
        case CaseOpenedForOrder(owner=str(owner)):
            return OrderCases(
                order_id=event.order_id,
                open_cases={
                    **state.open_cases,
                    owner: OpenCase(complaint_id=event.complaint_id, opened_at=event.opened_at),
                },
            )
        case CaseOpenedForOrder():
            # Opened before owners were recorded: whoever filed it proved nothing, so nobody joins it.
            return state.model_copy(update={"order_id": event.order_id})
        case CaseClosedForOrder():
            return state.model_copy(
                update={
                    "open_cases": {
                        owner: c for owner, c in state.open_cases.items() if c.complaint_id != event.complaint_id
                    }
                }
            )
    return state


ORDER_CASES: Aggregate[OrderCases] = Aggregate(OrderCases(), evolve_order_cases, decide_order_cases)


# --- one-time codes (stream verification-<id>, the id derived from the destination) -----------


class RequestCode(Value):
    """Send a one-time code to the contact on file (rate-limited; refused while locked).

    The code itself is not here (docs/adr/0025): only its keyed digest, to check entries against,
    and the code sealed for notify, to be sent."""

    verification_id: str = Field(min_length=1)
    channel: Literal["email", "sms"]
    destination: str = Field(min_length=1, max_length=320)
    code_digest: str = Field(min_length=1)
    code_sealed: str = Field(min_length=1)
    ttl: timedelta
    max_per_hour: int = Field(default=3, ge=1)


class VerifyCode(Value):
    """Check a code; ``max_attempts`` wrong ones in a row lock it for ``lockout``.

    ``code_digests``: the entered code's digest under each signing key (one matches the stored
    digest if the code is right, whichever key was first when it was sent)."""

    verification_id: str = Field(min_length=1)
    code_digests: tuple[str, ...] = Field(min_length=1)
    order_id: str | None = None
    seller_id: str | None = None
    max_attempts: int = Field(default=5, ge=1)
    lockout: timedelta = HOUR


class Verification(Value):
    """The codes sent to one destination, the wrong attempts, the lock, the verified code."""

    verification_id: str | None = None
    destination: str | None = None
    code_digest: str | None = None
    expires_at: datetime | None = None
    #: When codes were sent within the hour before the latest one: the rate limit's memory.
    requested: tuple[datetime, ...] = ()
    failed_attempts: int = 0
    locked_until: datetime | None = None
    verified_digest: str | None = None


class VerifyOutcome(StrEnum):
    """What a ``VerifyCode`` decision means; the handler shows one message per outcome."""

    VERIFIED = "verified"
    REJECTED = "rejected"
    LOCKED = "locked"


def locked_until(state: Verification, now: datetime) -> datetime | None:
    """When the lock ends, if the verification is locked at ``now``."""
    return state.locked_until if state.locked_until and now < state.locked_until else None


def is_verified(state: Verification) -> bool:
    """Whether the latest code was entered correctly (and no newer code was asked for)."""
    return state.verified_digest is not None


def verify_outcome(ce_types: Iterable[str]) -> VerifyOutcome:
    """The outcome of a ``VerifyCode`` from the CloudEvents types it appended.

    Nothing appended means the same right code was entered again (a retry): verified.
    ``VerificationLockedOut`` raised means locked.
    """
    types = set(ce_types)
    if not types or ContactVerified.ce_type() in types:
        return VerifyOutcome.VERIFIED
    return VerifyOutcome.LOCKED if VerificationLocked.ce_type() in types else VerifyOutcome.REJECTED


def _same(a: str | None, digests: tuple[str, ...]) -> bool:
    # Constant time: how long a comparison takes must not say how much was right. An empty digest
    # (a code requested before digests, docs/adr/0025) matches nothing.
    return a is not None and a != "" and any([hmac.compare_digest(a.encode(), d.encode()) for d in digests])


def _failures(state: Verification, now: datetime) -> int:
    """Failures that still count: a lock that has run out wipes the slate."""
    served = state.locked_until is not None and now >= state.locked_until
    return 0 if served else state.failed_attempts


def decide_verification(state: Verification, command: object, now: datetime) -> list[Event]:
    if (until := locked_until(state, now)) is not None:
        raise VerificationLockedOut(until - now)
    match command:
        case RequestCode():
            recent = sorted(t for t in state.requested if now - t < HOUR)
            if len(recent) >= command.max_per_hour:
                oldest_to_expire = recent[len(recent) - command.max_per_hour]
                raise TooManyCodes(oldest_to_expire + HOUR - now)
            return [
                VerificationCodeRequested(
                    verification_id=command.verification_id,
                    channel=command.channel,
                    destination=command.destination,
                    code_digest=command.code_digest,
                    code_sealed=command.code_sealed,
                    expires_at=now + command.ttl,
                    requested_at=now,
                )
            ]
        case VerifyCode():
            if _same(state.verified_digest, command.code_digests):
                return []
            vid = command.verification_id
            live = state.expires_at is not None and now < state.expires_at
            if live and _same(state.code_digest, command.code_digests):
                return [
                    ContactVerified(
                        verification_id=vid,
                        destination=state.destination,
                        order_id=command.order_id,
                        seller_id=command.seller_id,
                        verified_at=now,
                    )
                ]
            attempts = _failures(state, now) + 1
            failed: list[Event] = [VerificationAttemptFailed(verification_id=vid, attempts=attempts, failed_at=now)]
            if attempts >= command.max_attempts:
                failed.append(
                    VerificationLocked(verification_id=vid, locked_at=now, locked_until=now + command.lockout)
                )
            return failed
    raise TypeError(f"the verification aggregate has no command {type(command).__name__}")


def evolve_verification(state: Verification, event: Event) -> Verification:
    match event:
        case VerificationCodeRequested():
            # A newer code replaces the older one; a code can only be asked for outside a lock,
            # so one after a lock starts afresh.
            served = state.locked_until is not None
            return state.model_copy(
                update=dict(
                    verification_id=event.verification_id,
                    destination=event.destination,
                    code_digest=event.code_digest,
                    expires_at=event.expires_at,
                    verified_digest=None,
                    requested=(*(t for t in state.requested if event.requested_at - t < HOUR), event.requested_at),
                    failed_attempts=0 if served else state.failed_attempts,
                    locked_until=None if served else state.locked_until,
                )
            )
        case VerificationAttemptFailed():
            served = state.locked_until is not None and event.failed_at >= state.locked_until
            return state.model_copy(
                update=dict(failed_attempts=event.attempts, locked_until=None if served else state.locked_until)
            )
        case VerificationLocked():
            # Codes sent before the lock are void: after it, only a new code verifies.
            return state.model_copy(update=dict(locked_until=event.locked_until, code_digest=None, expires_at=None))
        case ContactVerified():
            # Single use: the code is spent; remembered only to recognise a retry of it.
            return state.model_copy(
                update=dict(verified_digest=state.code_digest, code_digest=None, expires_at=None, failed_attempts=0)
            )
    return state


VERIFICATION: Aggregate[Verification] = Aggregate(Verification(), evolve_verification, decide_verification)
