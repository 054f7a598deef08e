"""Notify's decisions: the "is this closed?" loop of a complaint, and the dial-out retry policy."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal, assert_never

from pydantic import Field

from contracts.envelope import Event
from contracts.notify import (
    EMAIL,
    AnswerVia,
    ClosureConfirmationRequested,
    ComplaintClosedUnconfirmed,
    ComplaintReopened,
    CustomerConfirmedClosed,
)
from services.kernel.domain import Aggregate, Value

DAY = timedelta(days=1)


def closure_stream(complaint_id: str) -> str:
    """The stream of one complaint's closure loop."""
    return f"closure-{complaint_id}"


# --- commands -------------------------------------------------------------------------------------


class ProposeClosure(Value):
    """Ask "is this closed?" after a resolution; a new message id starts a new round."""

    complaint_id: str = Field(min_length=1)
    message_id: str = Field(min_length=1, max_length=998)
    to: str = Field(pattern=EMAIL, max_length=320)
    recap: str = Field(min_length=1, max_length=5000)
    next_steps: tuple[str, ...] = ()
    link_ttl: timedelta = 7 * DAY


class Confirm(Value):
    """The complainant says yes, it is closed."""

    via: AnswerVia


class Dispute(Value):
    """The complainant says no, it is still a problem."""

    via: AnswerVia
    reason: str = Field(default="", max_length=20000)


class ReadReply(Value):
    """A reply to the closure email: a clear yes confirms, a clear no disputes, else nothing."""

    text: str = Field(min_length=1, max_length=20000)


class Tick(Value):
    """Time passed: send the one reminder, or close unconfirmed, whichever is due (each once).

    Both waits count from the round's question, so a late tick closes without a stale reminder.
    """

    reminder_after: timedelta = 2 * DAY
    close_after: timedelta = 7 * DAY


# --- state ----------------------------------------------------------------------------------------

Status = Literal["proposed", "confirmed", "disputed", "closed_unconfirmed"]


class Round(Value):
    """One "is this closed?" question and what became of it; earlier rounds are kept as history."""

    message_id: str
    to: str
    recap: str
    next_steps: tuple[str, ...] = ()
    link_ttl: timedelta
    asked_at: datetime
    reminded: bool = False
    status: Status = "proposed"
    answered_via: AnswerVia | None = None
    reopen_reason: str | None = None


class ClosureLoop(Value):
    """Every round of the closure question for one complaint, the current one last."""

    complaint_id: str | None = None
    rounds: tuple[Round, ...] = ()
    #: Every Message-ID used (questions and reminders): a repeated proposal changes nothing.
    message_ids: frozenset[str] = frozenset()

    @property
    def current(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None


# --- reading a reply ------------------------------------------------------------------------------

# A small English vocabulary on purpose: a wrong "yes" closes a live problem and a wrong "no"
# reopens a solved one, so anything not plainly one or the other goes to the agent.
_NO = re.compile(
    r"\bno\b(?!\s+(?:problem|worries)\b)|\bnope\b|\bnot\s+(?:yet|really\s+\w+|"
    r"(?:been\s+)?(?:resolved|closed|fixed|sorted|solved|done))\b|"
    r"\bstill\s+(?:a\s+problem|an\s+issue|broken|happening|waiting|missing|not\b)"
)
_YES = re.compile(
    r"\b(?:yes|yeah|yep|yup|confirmed|resolved|closed|sorted|fixed|solved|all\s+good|"
    r"no\s+(?:problem|worries))\b"
)
# A negation left after the no-phrases are taken out could turn a yes word around.
_NEGATION = re.compile(r"\b(?:not|never|nothing|nor)\b|n't\b")
#: Longer replies are conversations, not answers: they go to the agent.
MAX_ANSWER_WORDS = 20


def read_reply(text: str) -> Literal["yes", "no"] | None:
    """``"yes"`` or ``"no"`` for a plain answer to "is this closed?", ``None`` for anything else."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    said = " ".join(lines).lower().replace("\u2019", "'")
    if "?" in said or len(said.split()) > MAX_ANSWER_WORDS:
        return None
    said_no = _NO.search(said) is not None
    rest = _NO.sub(" ", said)
    said_yes = _YES.search(rest) is not None
    if said_no and not said_yes:
        return "no"
    if said_yes and not said_no and not _NEGATION.search(rest):
        return "yes"
    return None


def reply_is_question(text: str) -> bool:
    """Whether a reply is not a plain yes or no: the agent must read and answer it."""
    return read_reply(text) is None


def reminder_message_id(message_id: str) -> str:
    """The Message-ID of a question's one reminder, derived so that a retry reuses it."""
    bracketed = message_id.startswith("<") and message_id.endswith(">")
    local, at, domain = message_id.strip("<>").rpartition("@")
    reminder = f"{local}.reminder@{domain}" if at else f"{domain}.reminder"
    return f"<{reminder}>" if bracketed else reminder


# --- decide and evolve ----------------------------------------------------------------------------


def _answer(state: ClosureLoop, command: Confirm | Dispute, now: datetime) -> list[Event]:
    current, cid = state.current, state.complaint_id
    # Only an open question takes an answer; a late one after closing-unconfirmed still counts
    # (the complainant came back), while a second click on an answered round changes nothing.
    if current is None or current.status not in ("proposed", "closed_unconfirmed"):
        return []
    if isinstance(command, Confirm):
        return [CustomerConfirmedClosed(complaint_id=cid, via=command.via, confirmed_at=now)]
    return [ComplaintReopened(complaint_id=cid, via=command.via, reason=command.reason, reopened_at=now)]


def _tick(state: ClosureLoop, command: Tick, now: datetime) -> list[Event]:
    current = state.current
    if current is None or current.status != "proposed":
        return []
    waited = now - current.asked_at
    if waited >= command.close_after:
        return [ComplaintClosedUnconfirmed(complaint_id=state.complaint_id, closed_at=now)]
    if waited >= command.reminder_after and not current.reminded:
        return [
            ClosureConfirmationRequested(
                complaint_id=state.complaint_id,
                message_id=reminder_message_id(current.message_id),
                to=current.to,
                recap=current.recap,
                next_steps=list(current.next_steps),
                yes_url_expires_at=now + current.link_ttl,
                requested_at=now,
                reminder=True,
            )
        ]
    return []


#: Every command the closure loop takes (checked exhaustively below: ``assert_never``).
ClosureCommand = ProposeClosure | Confirm | Dispute | ReadReply | Tick


def decide_closure(state: ClosureLoop, command: ClosureCommand, now: datetime) -> list[Event]:
    match command:
        case ProposeClosure():
            if command.message_id in state.message_ids:
                return []
            return [
                ClosureConfirmationRequested(
                    complaint_id=command.complaint_id,
                    message_id=command.message_id,
                    to=command.to,
                    recap=command.recap,
                    next_steps=list(command.next_steps),
                    yes_url_expires_at=now + command.link_ttl,
                    requested_at=now,
                )
            ]
        case Confirm() | Dispute():
            return _answer(state, command, now)
        case ReadReply():
            answer = read_reply(command.text)
            if answer is None:
                return []
            plain = Confirm(via="reply") if answer == "yes" else Dispute(via="reply", reason=command.text)
            return _answer(state, plain, now)
        case Tick():
            return _tick(state, command, now)
        case _:
            assert_never(command)


def _settle(state: ClosureLoop, **update: Any) -> ClosureLoop:
    if state.current is None:
        return state
    return state.model_copy(update={"rounds": (*state.rounds[:-1], state.current.model_copy(update=update))})


def evolve_closure(state: ClosureLoop, event: Event) -> ClosureLoop:
    match event:
        case ClosureConfirmationRequested(reminder=True):
            reminded = _settle(state, reminded=True)
            ids = state.message_ids | {event.message_id}
            return reminded.model_copy(update={"message_ids": ids})
        case ClosureConfirmationRequested():
            # The link lifetime is not in the event; the expiry minus the asking time gives it.
            asked = Round(
                message_id=event.message_id,
                to=event.to,
                recap=event.recap,
                next_steps=tuple(event.next_steps),
                asked_at=event.requested_at,
                link_ttl=event.yes_url_expires_at - event.requested_at,
            )
            return ClosureLoop(
                complaint_id=event.complaint_id,
                rounds=(*state.rounds, asked),
                message_ids=state.message_ids | {event.message_id},
            )
        case CustomerConfirmedClosed():
            return _settle(state, status="confirmed", answered_via=event.via)
        case ComplaintReopened():
            return _settle(state, status="disputed", answered_via=event.via, reopen_reason=event.reason)
        case ComplaintClosedUnconfirmed():
            return _settle(state, status="closed_unconfirmed")
    return state


CLOSURE: Aggregate[ClosureLoop] = Aggregate(ClosureLoop(), evolve_closure, decide_closure)


# --- callback dial-out: when to try again ---------------------------------------------------------


class CallRetryPolicy(Value):
    """How long to wait before each dial-out attempt; after the last, email or SMS instead."""

    delays: tuple[timedelta, ...] = (timedelta(0), timedelta(seconds=30), timedelta(minutes=2))


def next_call_attempt(failures: int, policy: CallRetryPolicy = CallRetryPolicy()) -> timedelta | None:
    """How long to wait before dialling again after ``failures`` failed attempts.

    ``None``: the attempts are spent; tell the complainant by email or SMS instead.
    """
    if failures < 0:
        raise ValueError("failures cannot be negative")
    return policy.delays[failures] if failures < len(policy.delays) else None
