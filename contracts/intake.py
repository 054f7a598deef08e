"""The events of the front door: public ones on ``complaints.intake.v1``, private ones in intake's log."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.envelope import Event, event, registry

#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = r"^\+[1-9]\d{6,14}$"
#: A BCP 47 language tag, loosely: a language, then optional subtags (region, script, variant).
BCP47 = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


class Category(StrEnum):
    """What a complaint is about; routing picks the team from it.

    The complainant picks it from the list "does your complaint involve the following?".
    """

    DELIVERY_DRIVER_CONDUCT = "delivery_driver_conduct"
    PACKAGE_NOT_RECEIVED = "package_not_received"
    PART_OF_ORDER_MISSING = "part_of_order_missing"
    LATE_DELIVERY = "late_delivery"
    DAMAGED_ITEM = "damaged_item"
    WRONG_ADDRESS = "wrong_address"
    REFUND = "refund"
    ACCOUNT_LOCKED = "account_locked"
    SELLER_ISSUE = "seller_issue"
    OTHER = "other"


#: The wording the complaint page shows for each category, in the order it shows them.
CATEGORY_LABELS: dict[Category, str] = {
    Category.DELIVERY_DRIVER_CONDUCT: "A delivery driver's behaviour or driving",
    Category.PACKAGE_NOT_RECEIVED: "A package that never arrived",
    Category.PART_OF_ORDER_MISSING: "Items missing from an order",
    Category.LATE_DELIVERY: "A late delivery",
    Category.DAMAGED_ITEM: "A damaged item",
    Category.WRONG_ADDRESS: "A delivery to the wrong address",
    Category.REFUND: "A refund",
    Category.ACCOUNT_LOCKED: "A locked account",
    Category.SELLER_ISSUE: "A problem with a seller (or, for sellers, with a buyer)",
    Category.OTHER: "Something else",
}


#: Crockford's base32: no I, L, O or U, so a reference read aloud or typed is not misheard.
_READABLE = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def short_reference(complaint_id: str) -> str:
    """The reference a person reads aloud or types ("7F3A-91B2"): 40 bits of the complaint id in
    Crockford base32, in two groups of four. The page, the receipt and the desk all show it; the
    36-character id stays the key."""
    digits = re.sub(r"[^0-9a-f]", "", complaint_id.lower())[:10].ljust(10, "0")
    value = int(digits, 16)
    chars = "".join(_READABLE[(value >> shift) & 31] for shift in range(35, -1, -5))
    return f"{chars[:4]}-{chars[4:]}"


class Channel(StrEnum):
    """How the complaint reached us; ``proactive`` means we opened it before anyone complained."""

    WEB = "web"
    EMAIL = "email"
    SOCIAL = "social"
    PHONE = "phone"
    PROACTIVE = "proactive"


class Assurance(StrEnum):
    """How sure we are that the complainant is who they say they are.

    ``authenticated``: logged in as the customer or seller; ``verified_contact``: proved control
    of the email or phone on file (for the order or seller account) with a one-time code, the
    way in for someone who cannot log in; ``unverified``: neither.
    """

    AUTHENTICATED = "authenticated"
    VERIFIED_CONTACT = "verified_contact"
    UNVERIFIED = "unverified"


class Complainant(BaseModel):
    """Who complains and how to reach them.

    A login is not required (a locked-out seller must still be able to complain), but at least
    one of the ids or contact ways must be given.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "anyOf": [{"required": [n]} for n in ("customer_id", "seller_id", "email", "phone", "social_handle")]
        },
    )

    customer_id: str | None = Field(
        default=None, description="Customer account id, if known.", examples=["cust-7781204"]
    )
    seller_id: str | None = Field(
        default=None, description="Marketplace seller id, if the complainant is a seller.", examples=["sell-00311"]
    )
    email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Email address for replies and the closure question.",
        examples=["sam.okafor@example.com"],
    )
    phone: str | None = Field(
        default=None, pattern=E164, description="Phone number in E.164, for callbacks.", examples=["+447700900123"]
    )
    social_handle: str | None = Field(
        default=None,
        max_length=120,
        pattern=r"^[a-z]+:[^\s]+$",
        description="Social account, as <platform>:<handle>, for replies on the platform.",
        examples=["x:sam_okafor"],
    )
    display_name: str | None = Field(
        default=None, max_length=200, description="How agents address the complainant.", examples=["Sam Okafor"]
    )

    @model_validator(mode="after")
    def _reachable(self) -> Complainant:
        # A complaint from nobody we can identify or answer could never be closed.
        if not (self.customer_id or self.seller_id or self.email or self.phone or self.social_handle):
            raise ValueError("complainant needs a customer_id, seller_id, email, phone or social_handle")
        return self


@event
class ComplaintFiled(Event):
    """Emitted once when a complaint is filed, on any channel; it opens the complaint."""

    type_name = "complaints.intake.ComplaintFiled"

    complaint_id: str = Field(
        min_length=1, description="Id of the new complaint; the Kafka key.", examples=["c-2026-000042"]
    )
    category: Category = Field(description="What the complaint is about.", examples=[Category.DELIVERY_DRIVER_CONDUCT])
    description: str = Field(
        min_length=1,
        max_length=5000,
        description="The complaint in the complainant's own words.",
        examples=["The driver reversed onto the pavement and nearly hit me."],
    )
    channel: Channel = Field(description="How the complaint reached us.", examples=[Channel.WEB])
    complainant: Complainant = Field(
        description="Who complains and how to reach them.",
        examples=[{"customer_id": "cust-7781204", "phone": "+447700900123"}],
    )
    order_id: str | None = Field(default=None, description="The order concerned, if any.", examples=["ord-114-5523190"])
    tracking_numbers: list[str] = Field(
        default_factory=list, description="Carrier tracking numbers concerned.", examples=[["1Z999AA10123456784"]]
    )
    filed_at: AwareDatetime = Field(description="When the complainant filed it.", examples=["2026-03-14T09:12:03Z"])
    # Both added after v1 shipped, hence the defaults: older messages lack them.
    assurance: Assurance = Field(
        default=Assurance.UNVERIFIED,
        description="How sure we are of the complainant's identity; "
        "absent in messages from before it existed "
        "(read as unverified).",
        examples=[Assurance.AUTHENTICATED],
    )
    contact_id: str | None = Field(
        default=None,
        min_length=1,
        description="Id of the contact that opened the complaint (the "
        "web submission, email or social post); later "
        "contacts join it as ComplaintLinked.",
        examples=["ct-2026-000311"],
    )


@event
class CallbackRequested(Event):
    """Emitted when a complainant asks to be called back.

    By the "push this and we will call you" button, or by an agent on the complainant's behalf.
    """

    type_name = "complaints.intake.CallbackRequested"

    complaint_id: str = Field(min_length=1, description="The complaint the call is about.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="Id of this callback request.", examples=["cb-2026-000107"])
    phone: str = Field(pattern=E164, description="Number to call, in E.164.", examples=["+447700900123"])
    requested_at: AwareDatetime = Field(
        description="When the callback was asked for.", examples=["2026-03-14T09:12:05Z"]
    )
    preferred_language: str = Field(
        default="en", pattern=BCP47, description="Language for the call, as a BCP 47 tag.", examples=["en-GB"]
    )


#: Who can cancel a callback: the complainant, an agent, or the platform (e.g. a duplicate).
CancelledBy = Literal["customer", "agent", "system"]


@event
class CallbackCancelled(Event):
    """Emitted when a requested callback will not be made: cancelled before anyone dialled."""

    type_name = "complaints.intake.CallbackCancelled"

    complaint_id: str = Field(min_length=1, description="The complaint the call was about.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback request cancelled.", examples=["cb-2026-000107"])
    cancelled_at: AwareDatetime = Field(description="When it was cancelled.", examples=["2026-03-14T09:12:41Z"])
    by: CancelledBy = Field(
        description="Who cancelled it: the customer, an agent, or the system.", examples=["customer"]
    )


@event
class ClosureAnswered(Event):
    """Emitted when the complainant answers "is your complaint closed?" on their case page.

    The page is intake's; the question and its rounds are notify's, which applies the answer as
    it applies a click on the email's link (``via: page``), or ignores it when no question is open.
    """

    type_name = "complaints.intake.ClosureAnswered"

    complaint_id: str = Field(min_length=1, description="The complaint asked about.", examples=["c-2026-000042"])
    answer: Literal["yes", "no"] = Field(description="yes: it is closed; no: it is still a problem.", examples=["yes"])
    reason: str = Field(
        default="",
        max_length=2000,
        description="What is still wrong, for a no (the complainant's words; empty for a yes).",
        examples=[""],
    )
    answered_at: AwareDatetime = Field(description="When the complainant answered.", examples=["2026-03-16T08:03:11Z"])


@event
class CustomerMessageReceived(Event):
    """Emitted when the complainant writes again on an existing case.

    An email reply (threaded by reply token or ``In-Reply-To``), a social reply, or a follow-up
    on the web page. Auto-replies and bounces never become one.
    """

    type_name = "complaints.intake.CustomerMessageReceived"

    complaint_id: str = Field(min_length=1, description="The case the message belongs to.", examples=["c-2026-000042"])
    message_id: str = Field(
        min_length=1,
        description="Id of the message (for email its Message-ID); a message seen before is not recorded twice.",
        examples=["<CAH7kR3u9xqT2w@mail.example.com>"],
    )
    channel: Channel = Field(description="How the message reached us.", examples=[Channel.EMAIL])
    text: str = Field(
        min_length=1,
        max_length=20000,
        description="The message text (plain text; quoted history removed where it could be recognised).",
        examples=["Yes, it's closed. Thank you for calling me so quickly."],
    )
    sender: str = Field(
        min_length=1,
        max_length=320,
        description="Who sent it: an email address or a social handle.",
        examples=["sam.okafor@example.com"],
    )
    # Not ``subject``: that name is Event.subject(), the Kafka key.
    subject_line: str | None = Field(
        default=None,
        max_length=998,
        description="Email subject line, if any.",
        examples=["Re: Is your complaint c-2026-000042 closed?"],
    )
    in_reply_to: str | None = Field(
        default=None,
        description="Id of the message this one answers (email In-Reply-To, social reply-to id), if any.",
        examples=["<closure.c-2026-000042@complaints.example.com>"],
    )
    received_at: AwareDatetime = Field(description="When we received it.", examples=["2026-03-14T09:31:17Z"])


@event
class ComplaintLinked(Event):
    """Emitted when the complainant contacts us again about the same order: it joins their open case.

    Instead of opening a duplicate: the same proven person (the same customer login, or the same
    contact verified by one-time code) complaining about one order within the window has one case.
    Anyone else who names the order gets a case of their own, which staff see as related.
    """

    type_name = "complaints.intake.ComplaintLinked"

    complaint_id: str = Field(min_length=1, description="The open case the contact joined.", examples=["c-2026-000042"])
    contact_id: str = Field(min_length=1, description="Id of the new contact.", examples=["ct-2026-000318"])
    channel: Channel = Field(description="How the new contact reached us.", examples=[Channel.SOCIAL])
    order_id: str | None = Field(
        default=None, description="The order the contact is about.", examples=["ord-114-5523190"]
    )
    text: str = Field(
        min_length=1,
        max_length=20000,
        description="What the contact said.",
        examples=["@shop your van nearly ran me over on Elm Road this morning"],
    )
    sender: str = Field(
        min_length=1,
        max_length=320,
        description="Who sent it: an email address or a social handle.",
        examples=["@samokafor"],
    )
    linked_at: AwareDatetime = Field(description="When the contact joined the case.", examples=["2026-03-14T09:20:44Z"])


@event
class VerificationCodeRequested(Event):
    """Emitted when a one-time code is to be sent to the contact on file; notify sends it.

    The way in for someone who cannot log in (a locked-out seller): proving control of the email
    or phone on file for an order or seller account. The code is short-lived (until
    ``expires_at``) and single-use: one correct entry spends it, and a newer code replaces it.
    The code itself is never in this event (docs/adr/0025): intake checks an entry against
    ``code_digest``, a keyed digest only intake can recompute, and notify alone can open
    ``code_sealed``. Version 1 carried the code in clear; read as version 2, its code is void.
    Keyed by ``verification_id``, not by a complaint (there is none yet).
    """

    type_name = "complaints.intake.VerificationCodeRequested"
    version = 2

    verification_id: str = Field(
        min_length=1,
        description="Id of the verification, derived from the order or seller account and the channel; the Kafka key.",
        examples=["ver-3c1f8e2a-6b7d-5e90-a4c2-91d0f7b3e815"],
    )
    channel: Literal["email", "sms"] = Field(description="How to send the code.", examples=["email"])
    destination: str = Field(
        min_length=1,
        max_length=320,
        description="Where to send it: the email address or E.164 phone number on file.",
        examples=["lena@marshandco.example.com"],
    )
    code_digest: str = Field(
        max_length=64,
        description="HMAC-SHA256 (hex) of the verification id and "
        "the code under intake's signing key: what an entered code is checked "
        "against. Empty when read from version 1 (that code is void).",
        examples=["9f2c0d5e7a41b8c3e6d9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5"],
    )
    code_sealed: str = Field(
        max_length=200,
        description="The code sealed for notify alone (X25519, "
        "HKDF-SHA256, AES-256-GCM bound to the verification id; base64): nobody "
        "else can read it. Empty when read from version 1 (nothing is sent).",
        examples=["hYHYovC_QNq-prwX6dacH0l4_yhpv5-U12pV_xX96jsAAAAAAAAAAAAAAAAA"],
    )
    expires_at: AwareDatetime = Field(description="After this the code is refused.", examples=["2026-03-14T09:25:00Z"])
    requested_at: AwareDatetime = Field(description="When the code was asked for.", examples=["2026-03-14T09:15:00Z"])
    purpose: Literal["file_complaint"] = Field(
        default="file_complaint", description="What the code lets the person do.", examples=["file_complaint"]
    )

    def subject(self) -> str:
        return self.verification_id


@registry.upcaster("complaints.intake.VerificationCodeRequested.v1", VerificationCodeRequested.ce_type())
def _code_in_clear_is_void(data: dict) -> dict:
    """Version 1 carried the code in clear: read now, it neither verifies nor is sent again
    (its ten minutes ran out long ago)."""
    return {**{k: v for k, v in data.items() if k != "code"}, "code_digest": "", "code_sealed": ""}


@event
class ContactVerified(Event):
    """Emitted when a person entered the right code in time: they control that contact."""

    type_name = "complaints.intake.ContactVerified"

    verification_id: str = Field(
        min_length=1,
        description="The verification; the Kafka key.",
        examples=["ver-3c1f8e2a-6b7d-5e90-a4c2-91d0f7b3e815"],
    )
    destination: str = Field(
        min_length=1,
        max_length=320,
        description="The email address or E.164 phone number proved.",
        examples=["lena@marshandco.example.com"],
    )
    order_id: str | None = Field(
        default=None, description="The order whose contact on file it is, if any.", examples=["ord-207-8812044"]
    )
    seller_id: str | None = Field(
        default=None, description="The seller account whose contact on file it is, if any.", examples=["sell-00311"]
    )
    verified_at: AwareDatetime = Field(
        description="When the right code was entered.", examples=["2026-03-14T09:16:12Z"]
    )

    def subject(self) -> str:
        return self.verification_id


# --- private: kept in intake's own log (the store decodes them), never published ---------------


@event
class VerificationAttemptFailed(Event):
    """A wrong or expired code was entered (private: stays in intake's log)."""

    type_name = "complaints.intake.VerificationAttemptFailed"
    public = False

    verification_id: str = Field(
        min_length=1, description="The verification.", examples=["ver-3c1f8e2a-6b7d-5e90-a4c2-91d0f7b3e815"]
    )
    attempts: int = Field(ge=1, description="Failed attempts in a row, this one included.", examples=[2])
    failed_at: AwareDatetime = Field(description="When the code was refused.", examples=["2026-03-14T09:15:48Z"])

    def subject(self) -> str:
        return self.verification_id


@event
class VerificationLocked(Event):
    """Too many wrong codes: no code is accepted or sent until ``locked_until`` (private).

    The lock ends by itself so that nobody is locked out for good; codes sent before it are void.
    """

    type_name = "complaints.intake.VerificationLocked"
    public = False

    verification_id: str = Field(
        min_length=1, description="The verification.", examples=["ver-3c1f8e2a-6b7d-5e90-a4c2-91d0f7b3e815"]
    )
    locked_at: AwareDatetime = Field(description="When the lock began.", examples=["2026-03-14T09:17:30Z"])
    locked_until: AwareDatetime = Field(
        description="When a new code may be asked for.", examples=["2026-03-14T10:17:30Z"]
    )

    def subject(self) -> str:
        return self.verification_id


@event
class CaseOpenedForOrder(Event):
    """An order now has an open case of its owner, which the owner's later contacts about it join (private)."""

    type_name = "complaints.intake.CaseOpenedForOrder"
    public = False

    order_id: str = Field(min_length=1, description="The order.", examples=["ord-114-5523190"])
    complaint_id: str = Field(min_length=1, description="Its open case.", examples=["c-2026-000042"])
    opened_at: AwareDatetime = Field(description="When the case was opened for it.", examples=["2026-03-14T09:12:03Z"])
    # Added later, hence the default: a case opened before it has no proven owner, and nobody joins it.
    owner: str | None = Field(
        default=None,
        min_length=1,
        description="Who proved to be the complainant, the only one whose later "
        "contacts about the order join this case: customer:<id> (a "
        "customer's login, or the customer of the order for a proactive "
        "case) or contact:<email or phone> (verified by one-time code). "
        "Absent in events from before it existed: such a case is "
        "joined by nobody.",
        examples=["customer:cust-7781204"],
    )

    def subject(self) -> str:
        return self.order_id


@event
class CaseClosedForOrder(Event):
    """The order's open case was closed; the next contact about it opens a new one (private)."""

    type_name = "complaints.intake.CaseClosedForOrder"
    public = False

    order_id: str = Field(min_length=1, description="The order.", examples=["ord-114-5523190"])
    complaint_id: str = Field(min_length=1, description="The case that was closed.", examples=["c-2026-000042"])
    closed_at: AwareDatetime = Field(description="When it was closed.", examples=["2026-03-14T09:31:20Z"])

    def subject(self) -> str:
        return self.order_id
