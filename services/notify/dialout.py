"""The dial-out of one callback: attempts by the retry policy, then email or SMS instead. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from pydantic import Field

from contracts.envelope import Event
from contracts.notify import CallFailed, CallPlaced, DialOutRequested
from services.kernel.domain import Aggregate, Value
from services.notify.domain import CallRetryPolicy, next_call_attempt


def dialout_stream(callback_id: str) -> str:
    """The stream of one callback's dial-out."""
    return f"dialout-{callback_id}"


class RequestDialOut(Value):
    """Routing dispatched a callback: connect this agent and this number."""

    complaint_id: str = Field(min_length=1)
    callback_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    phone: str = Field(min_length=1)


class RecordCall(Value):
    """What the provider said to attempt ``attempt``: accepted (``call_sid``) or failed (``reason``)."""

    attempt: int = Field(ge=1)
    call_sid: str | None = None
    reason: str | None = None
    policy: CallRetryPolicy = CallRetryPolicy()


class DialOut(Value):
    """One callback's dial-out so far."""

    complaint_id: str | None = None
    callback_id: str | None = None
    agent_id: str | None = None
    phone: str | None = None
    requested_at: datetime | None = None
    failures: int = 0
    last_failed_at: datetime | None = None
    placed: bool = False

    def next_attempt_at(self, policy: CallRetryPolicy) -> datetime | None:
        """When to dial next; ``None`` if the call was placed or the attempts are spent."""
        if self.placed or self.complaint_id is None:
            return None
        wait = next_call_attempt(self.failures, policy)
        if wait is None:
            return None
        since = self.last_failed_at or self.requested_at
        return since + wait if since is not None else None

    def gave_up(self, policy: CallRetryPolicy) -> bool:
        """Every attempt failed: the complainant must hear from us another way."""
        return not self.placed and next_call_attempt(self.failures, policy) is None


#: Every command a dial-out takes (checked exhaustively below: ``assert_never``).
DialOutCommand = RequestDialOut | RecordCall


def decide_dialout(state: DialOut, command: DialOutCommand, now: datetime) -> list[Event]:
    match command:
        case RequestDialOut():
            if state.complaint_id is not None:
                return []
            return [DialOutRequested(**command.model_dump(), requested_at=now)]
        case RecordCall():
            # One record per attempt: a repeat of the same attempt (a retry after a crash) is a no-op.
            if state.placed or command.attempt != state.failures + 1:
                return []
            if command.call_sid:
                return [
                    CallPlaced(
                        complaint_id=state.complaint_id,
                        callback_id=state.callback_id,
                        call_sid=command.call_sid,
                        placed_at=now,
                    )
                ]
            return [
                CallFailed(
                    complaint_id=state.complaint_id,
                    callback_id=state.callback_id,
                    reason=(command.reason or "unknown")[:2000],
                    attempt=command.attempt,
                    final=next_call_attempt(command.attempt, command.policy) is None,
                    failed_at=now,
                )
            ]
        case _:
            assert_never(command)


def evolve_dialout(state: DialOut, event: Event) -> DialOut:
    match event:
        case DialOutRequested():
            return DialOut(
                complaint_id=event.complaint_id,
                callback_id=event.callback_id,
                agent_id=event.agent_id,
                phone=event.phone,
                requested_at=event.requested_at,
            )
        case CallPlaced():
            return state.model_copy(update={"placed": True})
        case CallFailed():
            return state.model_copy(update={"failures": state.failures + 1, "last_failed_at": event.failed_at})
    return state


DIALOUT: Aggregate[DialOut] = Aggregate(DialOut(), evolve_dialout, decide_dialout)
