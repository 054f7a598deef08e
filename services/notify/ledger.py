"""The ledger of one address: what the loop guard let go or held back, and what became of it.

One stream per address (``ledger-<address>``). Every automated message to that address is
decided here, so the optimistic concurrency check of the stream keeps the guard's counts right
when two causes want to write to the same person at once. Pure: no clock, no I/O.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from contracts.envelope import Event
from contracts.notify import (
    AccountLockNoted,
    AddressMarkedUndeliverable,
    EscalationRequested,
    MessageQueued,
    MessageSent,
    NotificationFailed,
    NotificationSuppressed,
    OutcomeShared,
    VerificationCodeSent,
)
from services.kernel.domain import Aggregate, Value
from services.notify.loop_guard import (
    Facts,
    GuardPolicy,
    Ledger,
    ProposedMessage,
    Suppress,
    judge,
    record_sent,
    record_suppressed,
)


def ledger_stream(address: str) -> str:
    """The stream of one address's ledger (addresses compare case-insensitively)."""
    return f"ledger-{address.lower()}"


# --- commands -------------------------------------------------------------------------------------


class ProposeMessage(Value):
    """Ask the guard to let ``message`` go; ``message_id`` is fixed by the cause (one per intent)."""

    message: ProposedMessage
    message_id: str = Field(min_length=1, max_length=998)
    context: dict = {}
    in_reply_to: str | None = None
    #: When a person last acted on the case (an agent resolving it): lifts the daily limit.
    human_action_at: datetime | None = None
    policy: GuardPolicy = GuardPolicy()


class NoteAccountLock(Value):
    """The account of ``recipient`` is locked (or unlocked again)."""

    address: str = Field(min_length=1)
    recipient: str = Field(min_length=1)
    locked: bool = True


class RecordSent(Value):
    """The courier handed the message over."""

    message_id: str
    attempts: int = Field(ge=1)


class RecordFailure(Value):
    """The courier gave the message up after the policy's last attempt."""

    message_id: str
    attempts: int = Field(ge=1)
    reason: str = Field(min_length=1)


class MarkUndeliverable(Value):
    """A permanent bounce: nothing more goes to this address."""

    address: str = Field(min_length=1)
    bounce_status: str = Field(min_length=1)
    complaint_id: str | None = None


# --- state ----------------------------------------------------------------------------------------


class AddressLedger(Value):
    """The guard's view of one address: its ledger, the facts about it, and each message's fate."""

    ledger: Ledger = Ledger()
    facts: Facts = Facts()
    queued: dict[str, MessageQueued] = {}
    #: Message ids held back, and what is done instead: the same intent is judged once, not again
    #: at every retry or tick.
    suppressed: dict[str, str] = {}
    done: frozenset[str] = frozenset()


# --- decide and evolve ----------------------------------------------------------------------------


def _propose(state: AddressLedger, command: ProposeMessage, now: datetime) -> list[Event]:
    message = command.message
    if command.message_id in state.queued or command.message_id in state.suppressed:
        return []  # the same intent again (a retry, a redelivery): it was decided already
    facts = state.facts
    if command.human_action_at is not None:
        key = message.complaint_id or message.recipient
        acted = max(command.human_action_at, facts.human_actions.get(key, command.human_action_at))
        facts = facts.model_copy(update={"human_actions": {**facts.human_actions, key: acted}})
    verdict = judge(state.ledger, facts, message, now, command.policy)
    if isinstance(verdict, Suppress):
        held: list[Event] = [
            NotificationSuppressed(
                complaint_id=message.complaint_id,
                recipient=message.recipient,
                message_id=command.message_id,
                template=message.template,
                channel=message.channel,
                reason=verdict.reason,
                alternative=verdict.alternative,
                suppressed_at=now,
            )
        ]
        if verdict.alternative == "human":
            held.append(
                EscalationRequested(
                    complaint_id=message.complaint_id,
                    recipient=message.recipient,
                    address=message.address,
                    template=message.template,
                    reason=verdict.reason,
                    detail=verdict.detail,
                    requested_at=now,
                )
            )
        return held
    return [
        MessageQueued(
            message_id=command.message_id,
            recipient=message.recipient,
            address=message.address,
            channel=message.channel,
            complaint_id=message.complaint_id,
            template=message.template,
            required_action=message.required_action.value,
            context=command.context,
            in_reply_to=command.in_reply_to,
            queued_at=now,
        )
    ]


def _delivered(state: AddressLedger, command: RecordSent, now: datetime) -> list[Event]:
    queued = state.queued.get(command.message_id)
    if queued is None or command.message_id in state.done:
        return []
    sent: list[Event] = [
        MessageSent(message_id=queued.message_id, address=queued.address, attempts=command.attempts, sent_at=now)
    ]
    channel = "sms" if queued.channel == "sms" else "email"
    if queued.template == "outcome" and queued.complaint_id:
        sent.append(
            OutcomeShared(
                complaint_id=queued.complaint_id, message_id=queued.message_id, channel=channel, shared_at=now
            )
        )
    if queued.template == "verification_code" and "verification_id" in queued.context:
        sent.append(
            VerificationCodeSent(verification_id=queued.context["verification_id"], channel=channel, sent_at=now)
        )
    return sent


def decide_ledger(state: AddressLedger, command: object, now: datetime) -> list[Event]:
    match command:
        case ProposeMessage():
            return _propose(state, command, now)
        case RecordSent():
            return _delivered(state, command, now)
        case RecordFailure():
            queued = state.queued.get(command.message_id)
            if queued is None or command.message_id in state.done:
                return []
            return [
                NotificationFailed(
                    message_id=queued.message_id,
                    complaint_id=queued.complaint_id,
                    recipient=queued.recipient,
                    template=queued.template,
                    channel=queued.channel,
                    attempts=command.attempts,
                    reason=command.reason[:2000],
                    failed_at=now,
                )
            ]
        case NoteAccountLock():
            if (command.recipient in state.facts.locked_accounts) == command.locked:
                return []
            return [
                AccountLockNoted(
                    address=command.address, recipient=command.recipient, locked=command.locked, noted_at=now
                )
            ]
        case MarkUndeliverable():
            if command.address.lower() in state.facts.undeliverable:
                return []
            return [
                AddressMarkedUndeliverable(
                    complaint_id=command.complaint_id,
                    address=command.address.lower(),
                    bounce_status=command.bounce_status,
                    marked_at=now,
                )
            ]
    raise TypeError(f"the ledger has no command {type(command).__name__}")


def _proposed(queued: MessageQueued) -> ProposedMessage:
    return ProposedMessage(
        recipient=queued.recipient,
        address=queued.address,
        complaint_id=queued.complaint_id,
        template=queued.template,
        required_action=queued.required_action,
        channel=queued.channel,
    )


def evolve_ledger(state: AddressLedger, event: Event) -> AddressLedger:
    facts = state.facts
    match event:
        case MessageQueued():
            # The guard counts a message when it lets it go: a failed delivery still was an attempt
            # to reach the person, and counting later would let a burst through.
            return state.model_copy(
                update={
                    "ledger": record_sent(state.ledger, _proposed(event), event.queued_at),
                    "queued": {**state.queued, event.message_id: event},
                }
            )
        case MessageSent() | NotificationFailed():
            return state.model_copy(update={"done": state.done | {event.message_id}})
        case NotificationSuppressed():
            if event.message_id:
                state = state.model_copy(
                    update={"suppressed": {**state.suppressed, event.message_id: event.alternative}}
                )
            if event.alternative != "human":
                return state
            message = ProposedMessage(
                recipient=event.recipient or "?", address="?", complaint_id=event.complaint_id, template=event.template
            )
            verdict = Suppress(reason=event.reason, alternative="human", detail="")
            return state.model_copy(
                update={"ledger": record_suppressed(state.ledger, message, verdict, event.suppressed_at)}
            )
        case AccountLockNoted():
            locked = (
                facts.locked_accounts | {event.recipient} if event.locked else facts.locked_accounts - {event.recipient}
            )
            return state.model_copy(update={"facts": facts.model_copy(update={"locked_accounts": locked})})
        case AddressMarkedUndeliverable():
            return state.model_copy(
                update={"facts": facts.model_copy(update={"undeliverable": facts.undeliverable | {event.address}})}
            )
    return state


LEDGER: Aggregate[AddressLedger] = Aggregate(AddressLedger(), evolve_ledger, decide_ledger)
