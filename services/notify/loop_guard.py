"""The loop guard: decides whether an automated message may go, so no one is trapped in a loop.

Story 3: a locked-out seller was emailed "log in to fix this" every day for 12 days. The guard
reads a ledger of what was sent to whom and the facts about the person, and holds back a
message that is too frequent, too repeated, undeliverable, or asks for what cannot be done.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field

from contracts.notify import Alternative, NotifyChannel, SuppressionReason
from services.kernel.domain import Value


class RequiredAction(StrEnum):
    """What a message asks its reader to do."""

    NONE = "none"
    REPLY = "reply"
    CLICK_LINK = "click_link"
    ENTER_CODE = "enter_code"
    LOG_IN = "log_in"
    CONTACT_SELLER_SUPPORT = "contact_seller_support"
    VIEW_BUYER_DETAILS = "view_buyer_details"


#: Actions behind a login: impossible while the account is locked (seller support, too, can
#: only be reached after logging in, which is how the seller of story 3 was trapped).
NEEDS_LOGIN = frozenset(
    {RequiredAction.LOG_IN, RequiredAction.CONTACT_SELLER_SUPPORT, RequiredAction.VIEW_BUYER_DETAILS}
)


class ProposedMessage(Value):
    """An automated message notify would like to send."""

    recipient: str = Field(min_length=1, description="Who it is for: a customer or seller id.")
    address: str = Field(min_length=1, description="Where it goes: email address or phone.")
    complaint_id: str | None = Field(default=None, description="The case, if it is about one.")
    template: str = Field(min_length=1)
    required_action: RequiredAction = RequiredAction.NONE
    channel: NotifyChannel = "email"
    #: Other ways to reach this person, in order of preference, should this one be refused.
    fallbacks: tuple[Literal["callback", "sms"], ...] = ()


class Sent(Value):
    """One message that went out."""

    recipient: str
    address: str
    complaint_id: str | None
    template: str
    required_action: RequiredAction
    channel: NotifyChannel
    sent_at: datetime


class HumanAsked(Value):
    """A suppression that asked a human to step in, so that the next one does not ask again."""

    complaint_id: str | None
    recipient: str
    template: str
    asked_at: datetime


class Ledger(Value):
    """What was sent to whom, and when a human was asked to step in instead."""

    sent: tuple[Sent, ...] = ()
    humans_asked: tuple[HumanAsked, ...] = ()


class Facts(Value):
    """What is known about the people and addresses, from other services and from bounces."""

    locked_accounts: frozenset[str] = frozenset()
    undeliverable: frozenset[str] = frozenset()
    #: Latest human action by key: a complaint id (an agent acted on the case) or a recipient
    #: (the person themselves asked, e.g. for a new code).
    human_actions: Mapping[str, datetime] = {}


class GuardPolicy(Value):
    """How often one template may reach one case, and one person."""

    max_per_case: int = Field(default=3, ge=1)
    min_interval: timedelta = timedelta(days=1)


class Send(Value):
    """The message may go."""

    verdict: Literal["send"] = "send"


class Suppress(Value):
    """The message must not go; ``alternative`` is what to do instead, ``detail`` is for staff."""

    verdict: Literal["suppress"] = "suppress"
    reason: SuppressionReason
    alternative: Alternative
    detail: str


Verdict = Send | Suppress


def _same_case(entry: Sent | HumanAsked, message: ProposedMessage) -> bool:
    # Without a case, the person stands in for it: a code or notice is counted per recipient.
    if message.complaint_id is None:
        return entry.complaint_id is None and entry.recipient == message.recipient
    return entry.complaint_id == message.complaint_id


def last_human_action(facts: Facts, message: ProposedMessage) -> datetime | None:
    """When a person (an agent on the case, or the recipient) last acted, if ever."""
    keys = (message.complaint_id, message.recipient)
    return max((facts.human_actions[k] for k in keys if k in facts.human_actions), default=None)


def _instead(message: ProposedMessage) -> Alternative:
    return message.fallbacks[0] if message.fallbacks else "human"


def _human_unless_asked(ledger: Ledger, facts: Facts, message: ProposedMessage) -> Alternative:
    # One escalation per loop: asking a human every day would be the same loop, one level up.
    since = last_human_action(facts, message)
    asked = any(
        _same_case(a, message) and a.template == message.template and (since is None or a.asked_at > since)
        for a in ledger.humans_asked
    )
    return "none" if asked else "human"


def judge(
    ledger: Ledger, facts: Facts, message: ProposedMessage, now: datetime, policy: GuardPolicy = GuardPolicy()
) -> Verdict:
    """Whether ``message`` may be sent at ``now``, or why not and what to do instead.

    In order: an undeliverable address, an action the person cannot take, the per-case cap,
    then the daily limit (lifted by a human's action since the last send).
    """
    if message.address in facts.undeliverable:
        return Suppress(
            reason="undeliverable",
            alternative=_instead(message),
            detail=f"{message.address} bounced; it is not written to again.",
        )
    if message.required_action in NEEDS_LOGIN and message.recipient in facts.locked_accounts:
        alternative = _instead(message)
        if alternative == "human":
            alternative = _human_unless_asked(ledger, facts, message)
        return Suppress(
            reason="cannot_act",
            alternative=alternative,
            detail=f"{message.template} asks to {message.required_action.value} but "
            f"the account of {message.recipient} is locked.",
        )
    same = [s for s in ledger.sent if _same_case(s, message) and s.template == message.template]
    if len(same) >= policy.max_per_case:
        return Suppress(
            reason="cap_reached",
            alternative=_human_unless_asked(ledger, facts, message),
            detail=f"{message.template} was sent {len(same)} times for this case.",
        )
    to_person = [s.sent_at for s in ledger.sent if s.recipient == message.recipient and s.template == message.template]
    last = max(to_person, default=None)
    acted = last_human_action(facts, message)
    if last is not None and now - last < policy.min_interval and (acted is None or acted <= last):
        return Suppress(
            reason="daily_limit",
            alternative="none",
            detail=f"{message.template} went to {message.recipient} at {last.isoformat()} and no one has acted since.",
        )
    return Send()


def record_sent(ledger: Ledger, message: ProposedMessage, now: datetime) -> Ledger:
    """The ledger after ``message`` went out at ``now``."""
    sent = Sent(**message.model_dump(exclude={"fallbacks"}), sent_at=now)
    return ledger.model_copy(update={"sent": (*ledger.sent, sent)})


def record_suppressed(ledger: Ledger, message: ProposedMessage, verdict: Suppress, now: datetime) -> Ledger:
    """The ledger after ``message`` was held back; it remembers a human was asked, if one was."""
    if verdict.alternative != "human":
        return ledger
    asked = HumanAsked(
        complaint_id=message.complaint_id, recipient=message.recipient, template=message.template, asked_at=now
    )
    return ledger.model_copy(update={"humans_asked": (*ledger.humans_asked, asked)})
