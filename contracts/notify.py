"""The events of notify on ``complaints.notify.v1``: closure question, calls, outcomes, guard."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Event, event

#: An email address, loosely: something, an at sign, something (delivery proves the rest).
EMAIL = r"^[^@\s]+@[^@\s]+$"

#: How the complainant answered "is this closed?": a one-click link or a reply to the email.
AnswerVia = Literal["link", "reply"]
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

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000042"])
    message_id: str = Field(min_length=1, max_length=998,
                            description="Message-ID of the email; one per intent, so a resend "
                                        "after a crash is recognised and not sent twice.",
                            examples=["<closure.c-2026-000042.1@complaints.example.com>"])
    to: str = Field(pattern=EMAIL, max_length=320, description="The complainant's email address.",
                    examples=["sam.okafor@example.com"])
    recap: str = Field(min_length=1, max_length=5000, description="What was done, for the "
                       "complainant.",
                       examples=["We reported the driver to our logistics partner."])
    next_steps: list[str] = Field(default_factory=list, description="What happens next, and when.",
                                  examples=[["The partner team will tell you what they did "
                                             "within 5 working days."]])
    yes_url_expires_at: AwareDatetime = Field(description="When the one-click links stop working.",
                                              examples=["2026-03-21T09:29:31Z"])
    requested_at: AwareDatetime = Field(description="When the email was asked for.",
                                        examples=["2026-03-14T09:29:31Z"])
    reminder: bool = Field(default=False, description="True for the one reminder of an "
                           "unanswered question.", examples=[False])


@event
class CustomerConfirmedClosed(Event):
    """Emitted when the complainant confirms the case is closed: a confirmed closure."""

    type_name = "complaints.notify.CustomerConfirmedClosed"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000042"])
    via: AnswerVia = Field(description="How the complainant answered: link or reply.",
                           examples=["link"])
    confirmed_at: AwareDatetime = Field(description="When the answer came.",
                                        examples=["2026-03-14T09:31:17Z"])


@event
class ComplaintReopened(Event):
    """Emitted when the complainant says the problem is not solved: the same case is reopened.

    The case keeps its history; routing takes it up again, and its next resolution asks again.
    """

    type_name = "complaints.notify.ComplaintReopened"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000042"])
    via: AnswerVia = Field(description="How the complainant answered: link or reply.",
                           examples=["reply"])
    reason: str = Field(default="", max_length=20000,
                        description="The complainant's words, if they gave any (empty for a link).",
                        examples=["No, the driver came again this morning."])
    reopened_at: AwareDatetime = Field(description="When the answer came.",
                                       examples=["2026-03-15T08:02:40Z"])


@event
class ComplaintClosedUnconfirmed(Event):
    """Emitted when the question and its one reminder went unanswered: closed, not confirmed."""

    type_name = "complaints.notify.ComplaintClosedUnconfirmed"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000042"])
    closed_at: AwareDatetime = Field(description="When the wait ran out.",
                                     examples=["2026-03-21T09:29:31Z"])


# --- callback dial-out ----------------------------------------------------------------------------

@event
class CallPlaced(Event):
    """Emitted when the telephony provider accepted the call connecting agent and complainant."""

    type_name = "complaints.notify.CallPlaced"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback the call is for.",
                             examples=["cb-2026-000107"])
    call_sid: str = Field(min_length=1, max_length=200,
                          description="The provider's id of the call.",
                          examples=["CA9f8e7d6c5b4a39281706f5e4d3c2b1a0"])
    placed_at: AwareDatetime = Field(description="When the provider accepted it.",
                                     examples=["2026-03-14T09:12:07Z"])


@event
class CallFailed(Event):
    """Emitted when a dial-out attempt failed; retried by policy, then email or SMS instead."""

    type_name = "complaints.notify.CallFailed"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback the call was for.",
                             examples=["cb-2026-000107"])
    reason: str = Field(min_length=1, max_length=2000, description="Why it failed, in words.",
                        examples=["no-answer"])
    attempt: int = Field(ge=1, description="Which attempt failed, counting from 1.",
                         examples=[1])
    failed_at: AwareDatetime = Field(description="When it failed.",
                                     examples=["2026-03-14T09:12:37Z"])


# --- outcome feedback and one-time codes --------------------------------------------------------

@event
class OutcomeShared(Event):
    """Emitted when the complainant was told what was done about their complaint."""

    type_name = "complaints.notify.OutcomeShared"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000042"])
    message_id: str = Field(min_length=1, max_length=998, description="Id of the message sent.",
                            examples=["<outcome.c-2026-000042@complaints.example.com>"])
    channel: Literal["email", "sms"] = Field(description="How it was sent.", examples=["email"])
    shared_at: AwareDatetime = Field(description="When it was handed for delivery.",
                                     examples=["2026-03-14T11:40:02Z"])


@event
class VerificationCodeSent(Event):
    """Emitted when a one-time code was handed for delivery (the code itself is never in it).

    Keyed by ``verification_id``: there is no complaint yet.
    """

    type_name = "complaints.notify.VerificationCodeSent"

    verification_id: str = Field(min_length=1, description="The verification; the Kafka key.",
                                 examples=["ver-3c1f8e2a-6b7d-5e90-a4c2-91d0f7b3e815"])
    channel: Literal["email", "sms"] = Field(description="How the code was sent.",
                                             examples=["sms"])
    sent_at: AwareDatetime = Field(description="When it was handed for delivery.",
                                   examples=["2026-03-14T09:15:01Z"])

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

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.",
                              examples=["c-2026-000311"])
    template: str = Field(min_length=1, max_length=200, description="The template held back.",
                          examples=["seller_login_reminder"])
    channel: NotifyChannel = Field(description="The channel it would have gone by.",
                                   examples=["email"])
    reason: SuppressionReason = Field(description="Why it was held back: cap_reached, "
                                      "cannot_act, undeliverable or daily_limit.",
                                      examples=["cannot_act"])
    alternative: Alternative = Field(description="What is done instead: a callback, an SMS, a "
                                     "human (escalation), or none (only held back).",
                                     examples=["callback"])
    suppressed_at: AwareDatetime = Field(description="When it was held back.",
                                         examples=["2026-03-15T08:00:00Z"])


@event
class AddressMarkedUndeliverable(Event):
    """Emitted when mail to an address bounced for good; nothing more is sent to it.

    Keyed by the address, not the case: every case with that address must see it.
    """

    type_name = "complaints.notify.AddressMarkedUndeliverable"

    complaint_id: str | None = Field(default=None, description="The case whose message "
                                     "bounced, if the bounce could be matched to one.",
                                     examples=["c-2026-000311"])
    address: str = Field(min_length=1, max_length=320,
                         description="The address that bounced; the Kafka key.",
                         examples=["lena@marshandco.example.com"])
    bounce_status: str = Field(min_length=1, max_length=200,
                               description="The delivery status code of the bounce (RFC 3463).",
                               examples=["5.1.1"])
    marked_at: AwareDatetime = Field(description="When the address was marked.",
                                     examples=["2026-03-15T08:00:05Z"])

    def subject(self) -> str:
        return self.address
