"""The events of notify on ``complaints.notify.v1``: closure question, calls, outcomes, guard."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Event, event

#: An email address, loosely: something, an at sign, something (delivery proves the rest).
EMAIL = r"^[^@\s]+@[^@\s]+$"

#: How the complainant answered "is this closed?": a one-click link or a reply to the email, or
#: the buttons of their case page (intake's ``ClosureAnswered``).
AnswerVia = Literal["link", "reply", "page"]
#: How notify reaches a person; ``voice`` is a call.
NotifyChannel = Literal["email", "sms", "voice"]
#: Why a message was not sent (see ``NotificationSuppressed``).
SuppressionReason = Literal["cap_reached", "cannot_act", "undeliverable", "daily_limit"]
#: What is done instead of a suppressed message; ``none`` means it is only held back.
Alternative = Literal["callback", "sms", "human", "none"]


# --- the closure loop: "is this closed?" ----------------------------------------------------------


@event
class ClosureConfirmationRequested(Event):
    """Emitted when the "Is this closed?" email is to be sent: after a resolution, or as a reminder.

    It carries the recap and the promised next steps, and two signed one-click links ("Yes, it's
    closed" / "No, still a problem") valid until ``yes_url_expires_at``.
    """

    type_name = "complaints.notify.ClosureConfirmationRequested"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    message_id: str = Field(
        min_length=1,
        max_length=998,
        description="Message-ID of the email; one per intent, so a resend "
        "after a crash is recognised and not sent twice.",
        examples=["<closure.c-2026-000042.1@complaints.example.com>"],
    )
    to: str = Field(
        pattern=EMAIL,
        max_length=320,
        description="The complainant's email address.",
        examples=["sam.okafor@example.com"],
    )
    recap: str = Field(
        min_length=1,
        max_length=5000,
        description="What was done, for the complainant.",
        examples=["We reported the driver to our logistics partner."],
    )
    next_steps: list[str] = Field(
        default_factory=list,
        description="What happens next, and when.",
        examples=[["The partner team will tell you what they did within 5 working days."]],
    )
    yes_url_expires_at: AwareDatetime = Field(
        description="When the one-click links stop working.", examples=["2026-03-21T09:29:31Z"]
    )
    requested_at: AwareDatetime = Field(description="When the email was asked for.", examples=["2026-03-14T09:29:31Z"])
    reminder: bool = Field(
        default=False, description="True for the one reminder of an unanswered question.", examples=[False]
    )


@event
class CustomerConfirmedClosed(Event):
    """Emitted when the complainant confirms the case is closed: a confirmed closure."""

    type_name = "complaints.notify.CustomerConfirmedClosed"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    via: AnswerVia = Field(description="How the complainant answered: link, reply or page.", examples=["link"])
    confirmed_at: AwareDatetime = Field(description="When the answer came.", examples=["2026-03-14T09:31:17Z"])


@event
class ComplaintReopened(Event):
    """Emitted when the complainant says the problem is not solved: the same case is reopened.

    The case keeps its history; routing takes it up again, and its next resolution asks again.
    """

    type_name = "complaints.notify.ComplaintReopened"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    via: AnswerVia = Field(description="How the complainant answered: link, reply or page.", examples=["reply"])
    reason: str = Field(
        default="",
        max_length=20000,
        description="The complainant's words, if they gave any (empty for a link).",
        examples=["No, the driver came again this morning."],
    )
    reopened_at: AwareDatetime = Field(description="When the answer came.", examples=["2026-03-15T08:02:40Z"])


@event
class ComplaintClosedUnconfirmed(Event):
    """Emitted when the question and its one reminder went unanswered: closed, not confirmed."""

    type_name = "complaints.notify.ComplaintClosedUnconfirmed"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    closed_at: AwareDatetime = Field(description="When the wait ran out.", examples=["2026-03-21T09:29:31Z"])


# --- callback dial-out ----------------------------------------------------------------------------


@event
class CallPlaced(Event):
    """Emitted when the telephony provider accepted the call connecting agent and complainant."""

    type_name = "complaints.notify.CallPlaced"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback the call is for.", examples=["cb-2026-000107"])
    call_sid: str = Field(
        min_length=1,
        max_length=200,
        description="The provider's id of the call.",
        examples=["CA9f8e7d6c5b4a39281706f5e4d3c2b1a0"],
    )
    placed_at: AwareDatetime = Field(description="When the provider accepted it.", examples=["2026-03-14T09:12:07Z"])


@event
class CallFailed(Event):
    """Emitted when a dial-out attempt failed; retried by policy, then email or SMS instead."""

    type_name = "complaints.notify.CallFailed"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback the call was for.", examples=["cb-2026-000107"])
    reason: str = Field(min_length=1, max_length=2000, description="Why it failed, in words.", examples=["no-answer"])
    attempt: int = Field(ge=1, description="Which attempt failed, counting from 1.", examples=[1])
    # Added after v1 (additive): routing frees the agent once no attempt is left.
    final: bool = Field(
        default=False,
        description="No attempt is left: the complainant is told "
        "by email or SMS instead, and the agent can be released.",
        examples=[False],
    )
    failed_at: AwareDatetime = Field(description="When it failed.", examples=["2026-03-14T09:12:37Z"])


# --- outcome feedback and one-time codes --------------------------------------------------------


@event
class OutcomeShared(Event):
    """Emitted when the complainant was told what was done about their complaint."""

    type_name = "complaints.notify.OutcomeShared"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    message_id: str = Field(
        min_length=1,
        max_length=998,
        description="Id of the message sent.",
        examples=["<outcome.c-2026-000042@complaints.example.com>"],
    )
    channel: Literal["email", "sms"] = Field(description="How it was sent.", examples=["email"])
    shared_at: AwareDatetime = Field(description="When it was handed for delivery.", examples=["2026-03-14T11:40:02Z"])


@event
class VerificationCodeSent(Event):
    """Emitted when a one-time code was handed for delivery (the code itself is never in it).

    Keyed by ``verification_id``: there is no complaint yet.
    """

    type_name = "complaints.notify.VerificationCodeSent"

    verification_id: str = Field(
        min_length=1,
        description="The verification; the Kafka key.",
        examples=["ver-3c1f8e2a-6b7d-5e90-a4c2-91d0f7b3e815"],
    )
    channel: Literal["email", "sms"] = Field(description="How the code was sent.", examples=["sms"])
    sent_at: AwareDatetime = Field(description="When it was handed for delivery.", examples=["2026-03-14T09:15:01Z"])

    def subject(self) -> str:
        return self.verification_id


# --- the loop guard -------------------------------------------------------------------------------


@event
class NotificationSuppressed(Event):
    """Emitted when the loop guard held a message back, and what it does instead.

    ``cap_reached``: this template went to this case too often; ``cannot_act``: it asks for an
    action the person cannot take (log in while locked out); ``undeliverable``: the address
    bounces; ``daily_limit``: it went out less than a day ago and no person has acted since.
    """

    type_name = "complaints.notify.NotificationSuppressed"

    # complaint_id became optional and recipient was added (additive): an automated reminder of
    # another system (the seller account's "please log in") need not be about any case.
    complaint_id: str | None = Field(
        default=None,
        min_length=1,
        description="The case, if the message was about one; the Kafka key (else the recipient is).",
        examples=["c-2026-000311"],
    )
    recipient: str | None = Field(
        default=None,
        min_length=1,
        max_length=320,
        description="Who it was for: a customer or seller id, or the address when no id is known.",
        examples=["sell-00311"],
    )
    message_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=998,
        description="The id the message would have had (one per intent): the same intent is judged once.",
        examples=["<seller_login_reminder.3f9c0e1a2b4d@complaints.example.com>"],
    )
    template: str = Field(
        min_length=1, max_length=200, description="The template held back.", examples=["seller_login_reminder"]
    )
    channel: NotifyChannel = Field(description="The channel it would have gone by.", examples=["email"])
    reason: SuppressionReason = Field(
        description="Why it was held back: cap_reached, cannot_act, undeliverable or daily_limit.",
        examples=["cannot_act"],
    )
    alternative: Alternative = Field(
        description="What is done instead: a callback, an SMS, a human (escalation), or none (only held back).",
        examples=["callback"],
    )
    suppressed_at: AwareDatetime = Field(description="When it was held back.", examples=["2026-03-15T08:00:00Z"])

    def subject(self) -> str:
        return self.complaint_id or self.recipient or "unknown"


@event
class AddressMarkedUndeliverable(Event):
    """Emitted when mail to an address bounced for good; nothing more is sent to it.

    Keyed by the address, not the case: every case with that address must see it.
    """

    type_name = "complaints.notify.AddressMarkedUndeliverable"

    complaint_id: str | None = Field(
        default=None,
        description="The case whose message bounced, if the bounce could be matched to one.",
        examples=["c-2026-000311"],
    )
    address: str = Field(
        min_length=1,
        max_length=320,
        description="The address that bounced; the Kafka key.",
        examples=["lena@marshandco.example.com"],
    )
    bounce_status: str = Field(
        min_length=1,
        max_length=200,
        description="The delivery status code of the bounce (RFC 3463).",
        examples=["5.1.1"],
    )
    marked_at: AwareDatetime = Field(description="When the address was marked.", examples=["2026-03-15T08:00:05Z"])

    def subject(self) -> str:
        return self.address


@event
class NotificationFailed(Event):
    """Emitted when a message could not be handed for delivery after the retry policy's last attempt.

    Nothing was lost silently: the message is given up only after every attempt, and says why.
    """

    type_name = "complaints.notify.NotificationFailed"

    message_id: str = Field(
        min_length=1,
        max_length=998,
        description="The message given up.",
        examples=["<closure.c-2026-000042.1f0e@complaints.example.com>"],
    )
    complaint_id: str | None = Field(
        default=None,
        min_length=1,
        description="The case, if the message was about one; the Kafka key (else the recipient is).",
        examples=["c-2026-000042"],
    )
    recipient: str = Field(
        min_length=1, max_length=320, description="Who it was for.", examples=["sam.okafor@example.com"]
    )
    template: str = Field(
        min_length=1, max_length=200, description="The template it used.", examples=["closure_question"]
    )
    channel: NotifyChannel = Field(description="The channel it was to go by.", examples=["email"])
    attempts: int = Field(ge=1, description="How many attempts were made.", examples=[5])
    reason: str = Field(
        min_length=1,
        max_length=2000,
        description="The last attempt's error.",
        examples=["SMTP server 127.0.0.1:2525 refused the connection"],
    )
    failed_at: AwareDatetime = Field(description="When it was given up.", examples=["2026-03-14T09:35:00Z"])

    def subject(self) -> str:
        return self.complaint_id or self.recipient


@event
class EscalationRequested(Event):
    """Emitted when the loop guard asks a human to step in: an automated message would trap the person.

    Routing turns it into its supervisor queue. Sent once per loop (case or recipient, and
    template); after a human's action a new loop may ask again.
    """

    type_name = "complaints.notify.EscalationRequested"

    complaint_id: str | None = Field(
        default=None,
        min_length=1,
        description="The case, if the held-back message was about one; the Kafka key (else the recipient is).",
        examples=["c-2026-000311"],
    )
    recipient: str = Field(
        min_length=1,
        max_length=320,
        description="Who needs a human: a customer or seller id, or an address.",
        examples=["sell-00311"],
    )
    address: str = Field(
        min_length=1,
        max_length=320,
        description="How they were being reached.",
        examples=["lena@marshandco.example.com"],
    )
    template: str = Field(
        min_length=1, max_length=200, description="The message held back.", examples=["seller_login_reminder"]
    )
    reason: SuppressionReason = Field(
        description="Why it was held back: cap_reached, cannot_act, undeliverable or daily_limit.",
        examples=["cannot_act"],
    )
    detail: str = Field(
        min_length=1,
        max_length=2000,
        description="What happened, for staff.",
        examples=["seller_login_reminder asks to log_in but the account of sell-00311 is locked."],
    )
    requested_at: AwareDatetime = Field(description="When the human was asked for.", examples=["2026-03-15T08:00:00Z"])

    def subject(self) -> str:
        return self.complaint_id or self.recipient


# --- private: kept in notify's own log, never published ---------------------------------------


@event
class ComplainantNoted(Event):
    """How to reach the complainant of a case, noted from intake's ComplaintFiled (private)."""

    type_name = "complaints.notify.ComplainantNoted"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    recipient: str = Field(
        min_length=1,
        max_length=320,
        description="Who complains: customer or seller id, else the email address or phone.",
        examples=["cust-7781204"],
    )
    email: str | None = Field(default=None, description="Email address, if given.", examples=["sam.okafor@example.com"])
    phone: str | None = Field(default=None, description="Phone in E.164, if given.", examples=["+447700900123"])
    display_name: str | None = Field(default=None, description="How to greet them.", examples=["Sam Okafor"])
    account_locked: bool = Field(
        default=False,
        description="The complaint says their account is locked (category account_locked).",
        examples=[False],
    )
    noted_at: AwareDatetime = Field(description="When it was noted.", examples=["2026-03-14T09:12:04Z"])


@event
class AccountLockNoted(Event):
    """A person's account is locked (or unlocked): "log in" messages cannot help them (private)."""

    type_name = "complaints.notify.AccountLockNoted"
    public = False

    address: str = Field(
        min_length=1, description="The address whose guard stream it is in.", examples=["lena@marshandco.example.com"]
    )
    recipient: str = Field(min_length=1, description="The account holder.", examples=["sell-00311"])
    locked: bool = Field(description="Locked now (false: unlocked).", examples=[True])
    noted_at: AwareDatetime = Field(description="When it was noted.", examples=["2026-03-14T09:16:12Z"])

    def subject(self) -> str:
        return self.address


@event
class MessageQueued(Event):
    """The loop guard let a message go: it waits for the courier (private; the ledger's entry)."""

    type_name = "complaints.notify.MessageQueued"
    public = False

    message_id: str = Field(
        min_length=1,
        max_length=998,
        description="One per intent.",
        examples=["<closure.c-2026-000042.1f0e@complaints.example.com>"],
    )
    recipient: str = Field(min_length=1, description="Who it is for.", examples=["cust-7781204"])
    address: str = Field(min_length=1, description="Email address or phone.", examples=["sam.okafor@example.com"])
    channel: NotifyChannel = Field(description="email or sms.", examples=["email"])
    complaint_id: str | None = Field(default=None, description="The case, if any.", examples=["c-2026-000042"])
    template: str = Field(min_length=1, description="The template.", examples=["closure_question"])
    required_action: str = Field(description="What it asks the reader to do.", examples=["click_link"])
    context: dict = Field(
        default_factory=dict,
        description="The template's variables.",
        examples=[{"recap": "We cancelled the 2 undelivered items."}],
    )
    in_reply_to: str | None = Field(
        default=None,
        description="Message-ID it follows up.",
        examples=["<closure.c-2026-000042.1f0e@complaints.example.com>"],
    )
    queued_at: AwareDatetime = Field(description="When it was let go.", examples=["2026-03-14T09:29:31Z"])

    def subject(self) -> str:
        return self.address


@event
class MessageSent(Event):
    """The courier handed the message to the SMTP server or SMS provider (private)."""

    type_name = "complaints.notify.MessageSent"
    public = False

    message_id: str = Field(
        min_length=1,
        max_length=998,
        description="The message.",
        examples=["<closure.c-2026-000042.1f0e@complaints.example.com>"],
    )
    address: str = Field(min_length=1, description="Where it went.", examples=["sam.okafor@example.com"])
    attempts: int = Field(ge=1, description="Attempts it took.", examples=[1])
    sent_at: AwareDatetime = Field(description="When it was accepted.", examples=["2026-03-14T09:29:31Z"])

    def subject(self) -> str:
        return self.address


@event
class DialOutRequested(Event):
    """A callback to dial: the complainant's number and the agent to connect (private)."""

    type_name = "complaints.notify.DialOutRequested"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback.", examples=["cb-2026-000107"])
    agent_id: str = Field(min_length=1, description="The agent.", examples=["agt-0042"])
    phone: str = Field(min_length=1, description="The complainant's number.", examples=["+447700900123"])
    requested_at: AwareDatetime = Field(description="When it was dispatched.", examples=["2026-03-14T09:12:06Z"])
